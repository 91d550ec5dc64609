"""What the send-time preference gate costs per message (issue 5). Prints figures, asserts nothing.

    python bench/preferences_gate.py [rows]

Measures, in one process against embedded PostgreSQL: the batch decision (`screening.screen`) for
claimed batches of bare addresses and of directory recipients with preferences and quiet hours,
and the List-Unsubscribe token each e-mail gets. CPU time (process_time) next to wall time, so a
busy machine distorts the figures less. Then a full in-process drain into the SMTP sink.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Env, bulk_enqueue  # noqa: E402


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(rows: int) -> None:
    env = Env()
    try:
        from django.utils import timezone

        from comms.services import recipient_upsert, tenant_get_default
        from delivery.models import Message
        from delivery.services import drain_all
        from delivery.services.screening import screen
        from preferences.headers import message_unsubscribe_token
        from preferences.services import preferences_update, quiet_hours_set, suppression_add

        tenant = tenant_get_default()
        bulk_enqueue(rows, priority=3, prefix="gate")
        for i in range(0, rows, 50):  # some suppressed addresses, as in a real list
            suppression_add(tenant=tenant, channel="email", address=f"gate{i}@example.com", reason="unsubscribe",
                            source="bench")
        people = []
        for i in range(200):
            person, _ = recipient_upsert(tenant=tenant, external_id=f"p{i}", data={
                "email": f"p{i}@example.com", "timezone": "Europe/Paris"})
            preferences_update(recipient=person, changes=[{"category": "messages", "channel": "email",
                                                           "enabled": i % 3 != 0}], updated_by="user", source="bench")
            quiet_hours_set(recipient=person, channels=["email"])
            people.append(person)
        Message.objects.bulk_create([Message(tenant=tenant, channel="email", category="messages", recipient=p,
                                             recipient_address=p.email, subject="s", body="b", priority=3)
                                     for p in people])
        now = timezone.now()
        bare = list(Message.objects.filter(recipient__isnull=True)[:rows])
        directory = list(Message.objects.filter(recipient__isnull=False))
        out = {}
        for name, msgs in (("bare_addresses", bare), ("directory_recipients", directory)):
            batches = [msgs[i:i + 200] for i in range(0, len(msgs), 200)]
            _, wall, cpu = timed(lambda: [screen(b, now=now) for b in batches])
            out[f"screen_{name}_us_per_msg"] = {"wall": round(wall / len(msgs) * 1e6, 1),
                                                "cpu": round(cpu / len(msgs) * 1e6, 1)}
        _, wall, cpu = timed(lambda: [message_unsubscribe_token(m) for m in bare])
        out["unsubscribe_token_us_per_msg"] = {"wall": round(wall / len(bare) * 1e6, 1),
                                               "cpu": round(cpu / len(bare) * 1e6, 1)}
        Message.objects.filter(recipient__isnull=False).delete()
        stats, wall, cpu = timed(drain_all)
        out["drain_in_process"] = {"messages": stats.claimed, "sent": stats.sent, "blocked": stats.blocked,
                                   "msgs_per_s_wall": round(stats.claimed / wall, 1),
                                   "cpu_us_per_msg": round(cpu / stats.claimed * 1e6, 1)}
        print("preferences gate:", json.dumps(out))
    finally:
        env.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
