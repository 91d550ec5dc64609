"""How fast due journey runs are advanced (issue 16). Prints figures, asserts nothing.

    python bench/journey_engine.py [runs]

In one process against embedded PostgreSQL: `runs` runs come due at the same moment in a journey
whose one step is an exit (the engine alone: claim, walk, bulk writes), and a tenth as
many in a journey whose step sends an email through the one send pipeline (preference decision,
template, enqueue). Prints runs advanced per second (wall), CPU ms per run, and the delay from due
time to advanced (p50/p99) when all of them are due at once. The 1,000,000-run benchmark builds on this.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Env  # noqa: E402


def _measure(journey_key: str, step: dict, runs: int, tenant) -> dict:
    from django.utils import timezone

    from comms.models import Recipient
    from comms.router.journeys import journey_save, journeys_advance
    from comms.router.models import JourneyRun

    version, _ = journey_save(tenant=tenant, key=journey_key,
                              definition={"entry": {"api": True}, "start": "s", "steps": {"s": step}})
    people = Recipient.objects.bulk_create(
        (Recipient(tenant=tenant, external_id=f"{journey_key}{i}", email=f"{journey_key}{i}@example.com")
         for i in range(runs)), batch_size=5000)
    due = timezone.now()
    JourneyRun.objects.bulk_create(
        (JourneyRun(tenant=tenant, journey=version.journey, version=version, recipient=p, step="s",
                    next_due_at=due, entered_at=due, context={"entry": {}}) for p in people), batch_size=5000)
    delays: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    while True:
        stats = journeys_advance(limit=500)
        if not stats.claimed:
            break
        delays += [(timezone.now() - due).total_seconds()] * stats.advanced
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    delays.sort()
    return {"journey": journey_key, "runs": runs, "runs_per_s": round(runs / wall), "cpu_ms_per_run":
            round(cpu / runs * 1000, 3), "due_to_advanced_p50_s": round(delays[len(delays) // 2], 2),
            "due_to_advanced_p99_s": round(delays[int(len(delays) * 0.99) - 1], 2)}


def main(runs: int) -> None:
    env = Env()
    try:
        from comms.services import tenant_get_default
        from templates_app import services as templates

        tenant = tenant_get_default()
        out = [_measure("exit", {"type": "exit"}, runs, tenant)]
        try:
            templates.active_version(tenant=tenant, template_key="bench_journey")
        except Exception:
            from django.contrib.auth import get_user_model

            user, _ = get_user_model().objects.get_or_create(username="bench-editor", defaults={"is_staff": True})
            approver, _ = get_user_model().objects.get_or_create(username="bench-approver", defaults={
                "is_staff": True, "is_superuser": True})
            template = templates.template_create(tenant=tenant, actor=user, user=user, data={
                "template_key": "bench_journey", "name": "bench", "category": "marketing", "channels": ["email"],
                "default_locale": "en-US", "variables_schema": {}, "sample_variables": {},
                "locales": [{"locale": "en-US", "subject": "Hi", "body_html": "<p>Hi</p>", "sms_text": "Hi"}]})
            version = template.versions.get()
            templates.version_submit(version=version, actor=user, user=user)
            templates.version_approve(version=version, user=approver)
        out.append(_measure("send", {"type": "send", "template": "bench_journey", "channels": ["email"]},
                            max(runs // 10, 100), tenant))
        print(json.dumps(out, indent=2))
    finally:
        env.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
