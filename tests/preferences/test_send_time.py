"""The decision inside the worker: preference changes after enqueue, quiet-hours deferral and its
promotion, blocked rows with their code, the API's early answer, and the List-Unsubscribe headers
of real e-mails caught by the SMTP sink."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import drain_all, housekeeping_run
from preferences.services import preferences_update, suppression_add, unsubscribe_claims

pytestmark = pytest.mark.django_db


def unfold(value: str) -> str:
    """RFC 5322 §2.2.3: a folded header is one line with the CRLFs removed."""
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def _send(api, **payload):
    response = api.post("/api/v1/messages", {"channel": "email", "subject": "Hi", "body": "Hello", **payload},
                        format="json")
    return response


def test_preference_change_between_enqueue_and_send_blocks(api, person, smtp_sink, noon_ny):
    response = _send(api, recipient_id=person.external_id, category="booking")
    assert response.status_code == 202, response.content
    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "email", "enabled": False}],
                       updated_by="user", source="preference_center")
    stats = drain_all()
    message = Message.objects.get(id=response.json()["id"])
    assert (stats.sent, stats.blocked) == (0, 1)
    assert (message.status, message.failure_code) == (Status.BLOCKED, "COMMS_PREF_BLOCKED")
    assert DeliveryLog.objects.filter(message=message, event="blocked").exists()
    assert smtp_sink.messages == []


def test_suppressed_after_enqueue_is_blocked_and_api_answers_early(api, tenant, smtp_sink):
    ok = _send(api, to="bob@example.com")
    suppression_add(tenant=tenant, channel="email", address="bob@example.com", reason="hard_bounce", source="smtp")
    drain_all()
    assert Message.objects.get(id=ok.json()["id"]).failure_code == "COMMS_SUPPRESSED"
    late = _send(api, to="Bob@EXAMPLE.com")
    assert late.status_code == 422 and late.json()["code"] == "COMMS_SUPPRESSED"


def test_quiet_hours_defer_then_housekeeping_promotes_and_sends(api, person, tenant, smtp_sink, night_ny, settings):
    settings.COMMS_QUIET_HOURS_JITTER = 0
    from delivery.models import ChannelProvider  # noqa: F401  (email goes through the default SMTP)
    from preferences.services import quiet_hours_set

    quiet_hours_set(recipient=person, channels=["email"])  # this person wants e-mail held at night too
    response = _send(api, recipient_id=person.external_id, category="messages")
    message = Message.objects.get(id=response.json()["id"])
    Message.objects.filter(pk=message.pk).update(next_attempt_at=night_ny, created_at=night_ny)
    stats = drain_all(clock=lambda: night_ny)
    message.refresh_from_db()
    assert stats.deferred == 1 and message.status == Status.DEFERRED
    assert message.failure_code == "COMMS_QUIET_HOURS" and message.attempt_count == 0
    morning = message.next_attempt_at  # 08:01 New York
    assert housekeeping_run(now=morning - dt.timedelta(seconds=1)).promoted == 0
    assert housekeeping_run(now=morning).promoted == 1
    assert drain_all(clock=lambda: morning).sent == 1
    message.refresh_from_db()
    assert message.status == Status.SENT and message.failure_code == ""
    assert len(smtp_sink.messages) == 1


def test_blocked_sms_falls_back_to_email(admin_api, person, smtp_sink, twilio_sms):
    response = admin_api.post("/api/v1/messages", {"channel": "sms", "recipient_id": person.external_id,
                                                   "category": "reviews", "subject": "New review", "body": "b",
                                                   "fallback_channels": ["email"]}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    first = Message.objects.get(id=response.json()["id"])
    assert first.status == Status.BLOCKED and first.failure_code == "COMMS_PREF_BLOCKED"
    follow = Message.objects.get(fallback_of=first.id)
    assert follow.channel == "email" and follow.status == Status.SENT


def test_list_unsubscribe_headers_on_real_email(api, person, tenant, smtp_sink, settings):
    settings.COMMS_PUBLIC_URL = "https://comms.example.org"
    _send(api, recipient_id=person.external_id, category="booking")
    _send(api, to="carl@example.com", category="marketing")
    _send(api, recipient_id=person.external_id, category="security", subject="Reset")
    drain_all()
    by_to = {m["To"]: m for m in smtp_sink.messages if m["Subject"] != "Reset"}
    [critical] = [m for m in smtp_sink.messages if m["Subject"] == "Reset"]
    assert critical["List-Unsubscribe"] is None and critical["List-Unsubscribe-Post"] is None
    for address, m in by_to.items():
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = unfold(m["List-Unsubscribe"]).strip("<>")
        assert url.startswith("https://comms.example.org/u/")
        claims = unsubscribe_claims(url.rsplit("/", 1)[1])
        if address == person.email:
            assert (claims.recipient_id, claims.category) == (str(person.pk), "booking")
        else:
            assert claims.message_id and claims.category == "marketing"
            assert address not in url  # a token carries ids, never the address


def test_bulk_rows_each_get_their_own_token_and_the_gate_costs_queries_per_batch(api, tenant, smtp_sink):
    response = api.post("/api/v1/messages/bulk", {"channel": "email", "subject": "News", "body": "b",
                                                  "category": "marketing",
                                                  "recipients": [{"to": f"r{i}@example.com"} for i in range(30)]},
                        format="json")
    assert response.status_code in (200, 201, 202), response.content
    suppression_add(tenant=tenant, channel="email", address="r7@example.com", reason="unsubscribe", source="link")
    with CaptureQueriesContext(connection) as queries:
        stats = drain_all()
    assert (stats.sent, stats.blocked) == (29, 1)
    tokens = {m["List-Unsubscribe"] for m in smtp_sink.messages}
    assert len(tokens) == 29
    assert sum("preferences_suppression" in q["sql"] for q in queries.captured_queries) == stats.batches
