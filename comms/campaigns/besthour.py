"""Best-hour campaigns: each recipient's message goes at their best hour within N hours of the start.

The fan-out reads the audience in chunks as for every campaign; this splitter asks the send-time
model (tracking/send_time.py) for each chunk's recipients in one go (their history and quiet
windows: a constant number of queries per chunk, none per recipient), and buffers rows by chosen
hour. A buffer is written as a chunk of its own when it is full (or at the end), with its hour as
the chunk's slot: the campaign's usual machinery (held chunks, the pump, pause/resume/cancel,
the throttle) then does the waiting, so no second queue exists. Within one hour the throttle spaces
that hour's chunks as it spaces a local-time zone's.

A/B sample-then-winner: the sample goes at each sampled recipient's best hour within
min(N, wait_hours / 2), so every sample message has at least half the wait to be opened before the
winner is chosen; the rest is planned for N hours from when the decision is due, its hour kept on
the chunk (``best_at``) while it is held, and given its slot when the winner is chosen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Iterator, NamedTuple

from comms.campaigns.abtest import SEQ_REST, abtest_due_at, campaign_abtest_config
from comms.campaigns.models import Campaign
from comms.models import Recipient
from tracking.send_time import BestHourPlanner

BUFFERED_CHUNKS = 4  # rows held in memory across hours, in chunks: the largest hour is written beyond it


class Part(NamedTuple):
    seq: int
    rows: list
    send_at: datetime | None  # None: an A/B rest chunk, held until the winner is chosen
    offset: int
    best_at: datetime


class BestHourSplit:
    """One channel's rows, regrouped by each recipient's best hour."""

    def __init__(self, campaign: Campaign, channel: str, *, size: int, start: datetime) -> None:
        self.campaign, self.size, self.start = campaign, size, start
        self.hours = int(campaign.best_within_hours or 0)
        self.throttle = campaign.throttle_per_minute
        # History up to the start only: a resumed fan-out plans the same hours as the interrupted one.
        self.planner = BestHourPlanner(tenant_id=campaign.tenant_id, channel=channel, category=campaign.category,
                                       until=start)
        ab = campaign_abtest_config(campaign)
        self.sample_hours = min(self.hours, int(float(ab["wait_hours"]) // 2)) if ab else self.hours
        self.rest_start = abtest_due_at(campaign) or start if ab else start
        self.next_seq = {"main": 0, "rest": SEQ_REST}
        self.buffers: dict[tuple[str, datetime], list] = {}
        self.written: dict[tuple[str, datetime], int] = {}
        self.buffered = 0

    def _ids(self, rows: list) -> list[str | None]:
        """Recipient pks of the rows (directory rows carry it; CSV rows name an external id or only an address)."""
        if not rows or not isinstance(rows[0], dict):
            return [str(row[0]) for row in rows]
        external = {r.get("recipient_id") for r in rows if r.get("recipient_id")}
        pks = dict(Recipient.objects.filter(tenant_id=self.campaign.tenant_id, external_id__in=external)
                   .values_list("external_id", "pk")) if external else {}
        return [str(pks[r["recipient_id"]]) if r.get("recipient_id") in pks else None for r in rows]

    def add(self, parts: Iterable[tuple[int, list, datetime | None]]) -> Iterator[Part]:
        """Plan one fan-out chunk (already split into A/B sample and rest by ``ab_split``)."""
        parts = [(rows, at is None) for _, rows, at in parts if rows]
        ids = [self._ids(rows) for rows, _ in parts]
        own, quiet = self.planner.load([i for group in ids for i in group if i is not None])
        for (rows, rest), group in zip(parts, ids):
            start, hours = (self.rest_start, self.hours) if rest else (self.start, self.sample_hours)
            phase = "rest" if rest else "main"
            for row, rid in zip(rows, group):
                best = self.planner.choose(own.get(rid), quiet.get(rid), start=start, within_hours=hours)
                self.buffers.setdefault((phase, best), []).append(row)
                self.buffered += 1
                if len(self.buffers[(phase, best)]) >= self.size:
                    yield self._flush((phase, best))
        while self.buffered > BUFFERED_CHUNKS * self.size:
            yield self._flush(max(self.buffers, key=lambda k: len(self.buffers[k])))

    def finish(self) -> Iterator[Part]:
        """What is left in the buffers, earliest hour first."""
        for key in sorted(self.buffers, key=lambda k: (k[0] == "rest", k[1])):
            yield self._flush(key)

    def _flush(self, key: tuple[str, datetime]) -> Part:
        phase, best = key
        rows = self.buffers.pop(key)
        self.buffered -= len(rows)
        done = self.written.get(key, 0)
        self.written[key] = done + len(rows)
        offset = int(done * 60 / self.throttle) if self.throttle else 0
        seq = self.next_seq[phase]
        self.next_seq[phase] += 1
        send_at = None if phase == "rest" else best + timedelta(seconds=offset)
        return Part(seq, rows, send_at, offset, best)
