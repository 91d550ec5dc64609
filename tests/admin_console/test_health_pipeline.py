"""The dashboard's pipelined provider health equals delivery.health.snapshot, provider by provider."""

from delivery import health

from admin_console.dashboard import _health_many


def test_pipelined_health_equals_snapshot(db, settings):
    settings.COMMS_BREAKER_FAILURES = 2
    for _ in range(5):
        health.record("ses", healthy=True, latency_ms=12.0)
    for _ in range(3):
        health.record("twilio", healthy=False, latency_ms=40.0)
    health.flush()
    rows = _health_many([("email", "ses"), ("sms", "twilio"), ("push", "never-used")])
    assert rows == [{"channel": c, **health.snapshot(n)} for c, n in
                    [("email", "ses"), ("sms", "twilio"), ("push", "never-used")]]
    assert rows[1]["state"] == "open" and rows[0]["success_rate_1h"] == 100.0
