"""A/B results for template experiments and campaigns, and the sample-then-winner decision.

Counts come from the delivery rows (sent, grouped by the variant each recipient was given at
render time) joined to tracking's FirstEvent (one row per message and event kind: unique opens and
clicks, the same rule as tracking's metric rows), so an experiment's and a campaign's figures agree
with the metric counters. The statistics live in ``abstats``.

Sample-then-winner (listmonk #1675): a campaign's ``ab_test`` settings say how large the test
sample is per variant, how long to wait, the metric, the minimum sample per variant and the
variant to fall back to when there is no significant winner (the tie rule).
``campaign_abtest_decide`` applies those rules once the wait is over and writes an audit row.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from comms.campaigns.abstats import Arm, analyse
from comms.campaigns.models import Campaign
from delivery.models import Message, MessageBatch
from templates_app.models import TemplateVersion

UnknownVariant = errors.error_class("COMMS_AB_UNKNOWN_VARIANT", 400, "No such variant in this experiment.")
BadSample = errors.error_class("COMMS_AB_BAD_SAMPLE", 400, "The sample percentage must lie in 1..50 per variant.")
WaitTooLong = errors.error_class("COMMS_AB_WAIT_TOO_LONG", 400, "The wait before choosing a winner is too long.")
BadMetric = errors.error_class("COMMS_AB_BAD_METRIC", 400, "Unknown metric; use open, click or conversion.")
NotReady = errors.error_class("COMMS_AB_NOT_READY", 409, "The test sample is still waiting for results.")
NoTest = errors.error_class("COMMS_AB_NO_TEST", 409, "This campaign has no A/B test.")
Decided = errors.error_class("COMMS_AB_DECIDED", 409, "The winner of this A/B test was already chosen.")

METRICS = {"open": "opened", "click": "clicked", "conversion": "converted"}
MAX_WAIT_HOURS = 7 * 24
MAX_SAMPLE_PERCENT = 50
SEQ_REST = 1_000_000  # the rest of chunk n is chunk SEQ_REST + n (same campaign, channel)


def _arms(where: str, params: list, kind: str) -> list[Arm]:
    """Sent messages and those with a first ``kind`` event, per variant (one grouped query)."""
    table = Message._meta.db_table
    sql = (f"SELECT m.variant, count(*), count(f.message_id) FROM {table} m "
           "LEFT JOIN tracking_firstevent f ON f.message_id = m.id AND f.event_type = %s "
           f"WHERE m.sent_at IS NOT NULL AND m.variant <> '' AND {where} GROUP BY m.variant ORDER BY m.variant")
    with connection.cursor() as cursor:
        cursor.execute(sql, [kind, *params])
        return [Arm(variant, successes, trials) for variant, trials, successes in cursor.fetchall()]


def _metric(metric: str) -> str:
    if metric not in METRICS:
        raise BadMetric(details={"metric": metric, "allowed": sorted(METRICS)})
    return METRICS[metric]


def _parse_mde(raw: Any) -> float:
    try:
        mde = float(raw)
    except (TypeError, ValueError):
        raise errors.ValidationFailed("mde is a number (absolute lift, e.g. 0.02).") from None
    if not 0 < mde < 1:
        raise errors.ValidationFailed("mde lies strictly between 0 and 1.")
    return mde


def _with_variants(arms: list[Arm], keys: list[str]) -> list[Arm]:
    """Every configured variant appears, with zero trials if nobody has been sent it yet."""
    have = {a.key: a for a in arms}
    return [have.get(k, Arm(k, 0, 0)) for k in keys] + [a for a in arms if a.key not in keys]


def experiment_results(*, version: TemplateVersion, metric: str = "open", mde: Any = 0.02,
                       control: str | None = None) -> dict[str, Any]:
    """Per variant of a version's experiment: rate, P(best), z-test vs the control, sample reached."""
    keys = [v.get("key") for v in (version.experiment or {}).get("variants", []) if v.get("key")]
    if control is not None and control not in keys:
        raise UnknownVariant(details={"variant": control, "variants": keys})
    arms = _with_variants(_arms("m.template_version_id = %s", [version.pk], _metric(metric)), keys)
    return {"metric": metric, **analyse(arms, control=control, mde=_parse_mde(mde))}


def campaign_arms(campaign: Campaign, metric: str) -> list[Arm]:
    batch_ids = [str(b) for b in campaign.batches.values_list("batch_id", flat=True)]
    if not batch_ids:
        return []
    return _arms("m.batch_id = ANY(%s::uuid[])", [batch_ids], _metric(metric))


def campaign_results(*, campaign: Campaign, metric: str | None = None, mde: Any = None) -> dict[str, Any]:
    cfg = campaign_abtest_config(campaign)
    metric = metric or cfg.get("metric", "open")
    arms = _with_variants(campaign_arms(campaign, metric), cfg.get("variants", []))
    control = cfg.get("control") if cfg.get("control") in {a.key for a in arms} else None
    return {"metric": metric, "ab_test": cfg or None,
            **analyse(arms, control=control, mde=_parse_mde(mde if mde is not None else cfg.get("mde", 0.02)))}


# --- configuration -------------------------------------------------------------------------------------

def abtest_config_clean(raw: dict[str, Any], *, variants: list[str]) -> dict[str, Any]:
    """Validate a campaign's sample-then-winner settings against the template's variant keys."""
    if not isinstance(raw, dict):
        raise errors.ValidationFailed("ab_test is an object.")
    unknown = set(raw) - {"sample_percent", "wait_hours", "metric", "min_sample", "default_variant", "control", "mde"}
    if unknown:
        raise errors.UnknownField(details={"fields": sorted(unknown)})
    if len(variants) < 2:
        raise UnknownVariant("The campaign's template has fewer than two experiment variants.",
                             details={"variants": variants})
    try:
        sample = float(raw.get("sample_percent", 10))
        wait = float(raw.get("wait_hours", 4))
        min_sample = int(raw.get("min_sample", 100))
    except (TypeError, ValueError):
        raise errors.ValidationFailed("sample_percent, wait_hours and min_sample are numbers.") from None
    if not 1 <= sample <= MAX_SAMPLE_PERCENT or sample * len(variants) > 100:
        raise BadSample(details={"sample_percent": sample, "variants": len(variants)})
    if not 0 < wait <= MAX_WAIT_HOURS:
        raise WaitTooLong(f"wait_hours lies in (0, {MAX_WAIT_HOURS}].", details={"wait_hours": wait})
    if min_sample < 1:
        raise errors.ValidationFailed("min_sample is at least 1.")
    control = raw.get("control") or variants[0]
    default = raw.get("default_variant") or control
    for key in (control, default):
        if key not in variants:
            raise UnknownVariant(details={"variant": key, "variants": variants})
    metric = raw.get("metric", "open")
    _metric(metric)
    return {"sample_percent": sample, "wait_hours": wait, "metric": metric, "min_sample": min_sample,
            "control": control, "default_variant": default, "mde": _parse_mde(raw.get("mde", 0.02)),
            "variants": variants}


def campaign_abtest_config(campaign: Campaign) -> dict[str, Any]:
    return dict(getattr(campaign, "ab_test", None) or {})


# --- the decision ---------------------------------------------------------------------------------------

def winner_pick(analysis: dict[str, Any], *, min_sample: int, default_variant: str) -> tuple[str, str]:
    """(variant, why) — the significant winner if every variant reached ``min_sample``, else the tie rule."""
    rows = analysis["variants"]
    short = [r["key"] for r in rows if r["trials"] < min_sample]
    if short:
        return default_variant, f"minimum sample ({min_sample}) not reached by {', '.join(short)}"
    if analysis["significant_winner"]:
        return analysis["significant_winner"], "significant"
    # The tie rule: without evidence the configured default (the control unless said otherwise) goes.
    return default_variant, "no significant difference"


def campaign_abtest_decide(*, campaign_id: Any, now: datetime | None = None, actor: Any = None) -> dict[str, Any]:
    """Choose the winning variant once the wait after the sample is over; audited; idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        cfg = campaign_abtest_config(campaign)
        if not cfg:
            raise NoTest()
        if cfg.get("winner"):
            return cfg
        due = abtest_due_at(campaign)
        if due is None or not campaign.fanout_done:
            raise NotReady("The test sample has not been sent yet.")
        if now < due:
            raise NotReady(details={"due": due.isoformat()})
        analysis = campaign_results(campaign=campaign)
        winner, why = winner_pick(analysis, min_sample=int(cfg["min_sample"]), default_variant=cfg["default_variant"])
        return _winner_set(campaign, cfg, winner, why, analysis, now=now, actor=actor)


def campaign_abtest_decide_now(*, tenant: Any, campaign_id: Any, variant: str | None = None, reason: str = "",
                               actor: Any = None, now: datetime | None = None, ip: str | None = None
                               ) -> dict[str, Any]:
    """Decide before the wait ends: by the same rules, or force ``variant`` (a reason is required).

    Refused while the sample is not all sent (the evidence would be partial by construction), once a
    winner is chosen, and for a campaign without an A/B test or no longer running. The rest is then
    released exactly as after the automatic decision; the audit row names the actor and the evidence.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(tenant=tenant, pk=campaign_id).first()
        if campaign is None:
            raise errors.NotFound("No such campaign.")
        cfg = campaign_abtest_config(campaign)
        if not cfg:
            raise NoTest()
        if cfg.get("winner"):
            raise Decided(details={"winner": cfg["winner"], "decided_at": cfg.get("decided_at")})
        if campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED):
            raise errors.CampaignState(f"A {campaign.state} campaign's A/B test cannot be decided.",
                                       details={"state": campaign.state})
        pending = _sample_pending(campaign)
        if campaign.state in (Campaign.State.DRAFT, Campaign.State.SCHEDULED) or not campaign.fanout_done or pending:
            raise NotReady("The test sample has not all been sent yet.",
                           details={"fanout_done": campaign.fanout_done, "sample_unsent": pending})
        if variant is not None and variant not in cfg["variants"]:
            raise UnknownVariant(details={"variant": variant, "variants": cfg["variants"]})
        if variant is not None and not reason:
            raise errors.ValidationFailed("Say why this variant is forced (a reason is required).",
                                          details={"field": "reason"})
        analysis = campaign_results(campaign=campaign)
        if variant is None:
            winner, why = winner_pick(analysis, min_sample=int(cfg["min_sample"]),
                                      default_variant=cfg["default_variant"])
            why = f"decided early: {why}" + (f" ({reason})" if reason else "")
        else:
            winner, why = variant, f"forced: {reason}"
        return _winner_set(campaign, cfg, winner, why, analysis, now=now, actor=actor, ip=ip, manual=True)


def _sample_pending(campaign: Campaign) -> int:
    """Rows of the sample chunks not sent yet (scheduled, queued, sending or deferred)."""
    batch_ids = list(campaign.batches.filter(seq__lt=SEQ_REST).values_list("batch_id", flat=True))
    return Message.objects.filter(batch_id__in=batch_ids, sent_at__isnull=True,
                                  status__in=["scheduled", "queued", "sending", "deferred"]).count()


def _winner_set(campaign: Campaign, cfg: dict[str, Any], winner: str, why: str, analysis: dict[str, Any], *,
                now: datetime, actor: Any, ip: str | None = None, manual: bool = False) -> dict[str, Any]:
    """Store the decision, give the held rest the winner and its slots, audit with the evidence."""
    cfg.update(winner=winner, winner_reason=why, decided_at=now.isoformat(),
               decided_by="manual" if manual else "automatic")
    campaign.ab_test = cfg
    campaign.save(update_fields=["ab_test"])
    released = _rest_release(campaign, winner, now)
    audit_record(actor=actor, action="campaign.abtest_winner", target=campaign, tenant=campaign.tenant, ip=ip,
                 reason=why, diff={"winner": winner, "rest_chunks": released, "manual": manual,
                                   "metric": analysis["metric"], "significant_winner": analysis["significant_winner"],
                                   "needed_per_variant": analysis["needed_per_variant"], "variants": [
                                       {k: r[k] for k in ("key", "trials", "successes", "prob_best", "p_value")}
                                       for r in analysis["variants"]]})
    return cfg


def abtest_due_at(campaign: Campaign) -> datetime | None:
    """When the winner may be chosen: the wait counted from the campaign's start (the sample's send)."""
    cfg = campaign_abtest_config(campaign)
    started = campaign.started_at or campaign.start_at
    return started + timedelta(hours=float(cfg["wait_hours"])) if cfg and started else None


def _bucket(campaign_id: Any, key: Any) -> float:
    digest = hashlib.blake2b(f"{campaign_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def ab_split(campaign: Campaign, seq: int, rows: list, send_at: datetime) -> list[tuple[int, list, datetime | None]]:
    """(seq, rows, send_at) parts of one fan-out chunk: the test sample and the held rest.

    A recipient is in the sample when a hash of (campaign, recipient) falls under
    sample_percent × variants: a uniform, reproducible draw (a resumed fan-out draws the same
    people); the template's sticky split then shares the sample between the variants.
    """
    cfg = campaign_abtest_config(campaign)
    if not cfg:
        return [(seq, rows, send_at)]
    share = float(cfg["sample_percent"]) * len(cfg["variants"]) / 100
    sample, rest = [], []
    for row in rows:
        key = (row.get("recipient_id") or row.get("to")) if isinstance(row, dict) else row[0]
        (sample if _bucket(campaign.id, key) < share else rest).append(row)
    return [(seq, sample, send_at), (SEQ_REST + seq, rest, None)]


def _rest_release(campaign: Campaign, winner: str, now: datetime) -> int:
    """Give the held rest chunks the winner and a slot; the campaign pump releases them as usual."""
    rest = list(campaign.batches.filter(seq__gte=SEQ_REST, released_at__isnull=True))
    for chunk in rest:
        batch = MessageBatch.objects.select_for_update().get(pk=chunk.batch_id)
        batch.metadata = {**(batch.metadata or {}), "ab_variant": winner}
        batch.save(update_fields=["metadata"])
    # A best-hour rest chunk keeps the hour planned for it (besthour.py); PostgreSQL's GREATEST skips
    # the NULL best_at of every other chunk, which therefore goes from now.
    start = Greatest(F("best_at"), Value(now), output_field=DateTimeField())
    campaign.batches.filter(pk__in=[c.pk for c in rest]).update(
        send_at=start + (F("offset_seconds") * timedelta(seconds=1)))
    return len(rest)


def campaigns_abtest_tick(*, now: datetime | None = None) -> int:
    """Beat: decide every running A/B campaign whose wait is over; returns how many were decided."""
    now = now or timezone.now()
    decided = 0
    for campaign in Campaign.objects.filter(state=Campaign.State.RUNNING, fanout_done=True).exclude(ab_test={}):
        cfg = campaign_abtest_config(campaign)
        due = abtest_due_at(campaign)
        if cfg.get("winner") or due is None or due > now:
            continue
        campaign_abtest_decide(campaign_id=campaign.pk, now=now)
        decided += 1
    return decided
