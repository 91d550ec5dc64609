"""Warm-up caps hold across worker processes: the count is one PostgreSQL row taken under a row
lock, so two processes racing for the last slots never grant more than the cap."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone as dt_timezone

import pytest

from comms.enums import Status
from delivery.deliverability import pools, warmup
from delivery.models import Message, WarmupCounter
from delivery.services import SendSpec, message_bulk_enqueue
from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
DAY1 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)

_TAKER = """
import sys, time, datetime, django
django.setup()
from delivery.deliverability import warmup
ladder, start = int(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
granted = sum(warmup.take(ladder_id=ladder, group="gmail", day=datetime.date(2026, 3, 2), n=1, cap=150)
              for _ in range(120))
print(granted)
"""

_DRAINER = """
import sys, time, datetime, django
django.setup()
from delivery.services import drain_all
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.005)
stats = drain_all(clock=lambda: datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.timezone.utc))
print(stats.sent, stats.deferred)
"""


def _run_two(script: str, *args: str, extra_env: dict | None = None) -> list[str]:
    env = {**worker_env(), "DJANGO_SETTINGS_MODULE": "config.settings", **(extra_env or {})}
    start = str(time.time() + 4)  # both processes past django.setup() before either starts
    procs = [subprocess.Popen([sys.executable, "-c", script, *args, start], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        outs.append(out.strip().splitlines()[-1])
    return outs


def test_two_processes_racing_for_slots_never_exceed_the_cap(tenant):
    pools.pool_create(name="marketing")
    ladder = warmup.ladder_create(pool="marketing", schedule=[150], started_on=DAY1.date())
    granted = [int(x) for x in _run_two(_TAKER, str(ladder.id))]
    assert sum(granted) == 150  # 240 asked, 150 granted, whoever won each race
    counter = WarmupCounter.objects.get(ladder=ladder, group="gmail")
    assert (counter.sent, counter.deferred) == (150, 90)


def test_two_engine_processes_send_exactly_the_cap(tenant, smtp_sink):
    pools.pool_create(name="marketing", categories=["marketing"])
    warmup.ladder_create(pool="marketing", schedule=[25], started_on=DAY1.date())
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="s", body="b", priority=3,
                                                      category="marketing"),
                         recipients=[{"to": f"u{i}@gmail.com"} for i in range(60)], now=DAY1)
    # Small batches, so both processes claim and ask for slots many times, interleaved; no reserve
    # for P0/P1 (all of this is P3), so the whole cap is open to it.
    results = _run_two(_DRAINER, extra_env={"COMMS_P3_BATCH": "4", "COMMS_WARMUP_RESERVE": "0"})
    sent = sum(int(r.split()[0]) for r in results)
    assert sent == 25
    assert Message.objects.filter(status=Status.SENT).count() == 25
    assert Message.objects.filter(status=Status.DEFERRED, failure_code="COMMS_WARMUP_CAP").count() == 35
    assert len(smtp_sink.messages) == 25
    assert WarmupCounter.objects.get(group="gmail").sent == 25
