"""Email end to end: API → Message row → claim → SMTP stand-in, with every outcome recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db

SEND = {"channel": "email", "to": "Ada@Example.COM", "subject": "Welcome", "body": "Hello Ada",
        "body_html": "<p>Hello <b>Ada</b></p>"}


def test_send_is_accepted_then_delivered_into_the_sink(api, smtp_sink):
    response = api.post("/api/v1/messages", SEND, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["to"] == "Ada@example.com"  # domain lower-cased, local part kept

    stats = drain_all()
    assert stats.sent == 1

    [mail] = smtp_sink.messages
    assert mail["To"] == "Ada@example.com"
    assert mail["Subject"] == "Welcome"
    assert mail["X-Comms-Message-Id"] == body["id"]
    assert mail["Message-ID"] == f"<{body['id']}@comms.localhost>"
    assert mail["Date"]
    assert "no-reply@comms.localhost" in mail["From"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk() if not p.is_multipart()}
    text, footer = parts["text/plain"].replace("\r\n", "\n").split("\n-- \n")  # body, then the unsubscribe link
    assert text.strip() == "Hello Ada" and footer.startswith("Unsubscribe: http")
    assert "<b>Ada</b>" in parts["text/html"] and 'class="comms-footer"' in parts["text/html"]

    detail = api.get(f"/api/v1/messages/{body['id']}").json()
    assert detail["status"] == "sent"
    assert detail["provider"] == "smtp"
    assert detail["provider_ref"] == mail["Message-ID"]
    assert [e["event"] for e in detail["delivery_log"]] == ["queued", "sent"]
    assert detail["delivery_log"][1]["attempt"] == 1


def test_transient_451_is_retried_on_schedule_and_delivered_once(api, smtp_sink):
    smtp_sink.script("flaky@example.com", "451 4.3.0 Mailbox busy, try later")
    message_id = api.post("/api/v1/messages", {**SEND, "to": "flaky@example.com"}, format="json").json()["id"]

    first = timezone.now()
    drain_all(clock=lambda: first)
    message = Message.objects.get(id=message_id)
    assert message.status == Status.QUEUED
    assert message.attempt_count == 1
    assert message.failure_code == "451"
    # First retry after ~1 minute (±10 % jitter).
    assert timedelta(seconds=53) <= message.next_attempt_at - first <= timedelta(seconds=67)
    assert smtp_sink.messages == []

    # Not due yet: nothing is claimed.
    assert drain_all(clock=lambda: first + timedelta(seconds=30)).claimed == 0
    later = first + timedelta(seconds=70)
    assert drain_all(clock=lambda: later).sent == 1

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempt_count == 2
    assert len(smtp_sink.by_comms_id()[message_id]) == 1
    events = list(DeliveryLog.objects.filter(message_id=message_id).order_by("id").values_list("event", "status_code"))
    assert events == [("retrying", "451"), ("sent", "")]  # creation is derived, not stored


def test_permanent_550_fails_at_once_without_retry(api, smtp_sink):
    smtp_sink.script("nobody@example.com", "550 5.1.1 No such user")
    message_id = api.post("/api/v1/messages", {**SEND, "to": "nobody@example.com"}, format="json").json()["id"]
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.FAILED
    assert message.failure_code == "550"
    assert "No such user" in message.failure_reason
    assert message.failed_at is not None
    # Even much later nothing is retried.
    assert drain_all(clock=lambda: timezone.now() + timedelta(days=1)).claimed == 0
    assert smtp_sink.rcpt_attempts["nobody@example.com"] == 1


def test_retries_exhausted_go_to_the_dlq_and_can_be_requeued(admin_api, smtp_sink):
    smtp_sink.script("down@example.com", *["451 4.2.1 Mailbox temporarily unavailable"] * 5)
    message_id = admin_api.post("/api/v1/messages", {**SEND, "to": "down@example.com"}, format="json").json()["id"]
    now = timezone.now()
    for step in range(5):  # 1 try + 4 retries (1 min, 5 min, 30 min, 2 h)
        drain_all(clock=lambda: now)
        now += timedelta(hours=3)
    message = Message.objects.get(id=message_id)
    assert message.status == Status.DEAD
    assert message.attempt_count == 5
    assert list(DeliveryLog.objects.filter(message_id=message_id).values_list("event", flat=True).order_by("id")) == [
        "retrying", "retrying", "retrying", "retrying", "dead"]

    response = admin_api.post(f"/api/v1/messages/{message_id}/requeue")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    assert drain_all().sent == 1
    assert len(smtp_sink.by_comms_id()[message_id]) == 1


def test_connection_refused_is_transient(api, smtp_sink, settings):
    from comms.devserver.embedded import free_port

    settings.EMAIL_PORT = free_port()  # nothing listens there
    message_id = api.post("/api/v1/messages", SEND, format="json").json()["id"]
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.QUEUED
    assert message.failure_code == "connect"
    assert message.attempt_count == 1


def test_bulk_rows_each_carry_their_own_recipient_and_ids(tenant, smtp_sink):
    """One session renders the shared content once; every copy still names its own recipient."""
    from delivery.services import SendSpec, message_bulk_enqueue

    recipients = [{"to": "a@example.com"}, {"to": "Bob.Very.Long.Local-Part+tag@sub.example.org"},
                  {"to": "c@example.com"}, {"to": "doerte@Bücher.example"}]
    result = message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Same", body="Same body",
                                                                body_html="<p>Same</p>"), recipients=recipients)
    assert drain_all().sent == 4
    rows = {m.recipient_address: str(m.id) for m in Message.objects.filter(batch=result.batch)}
    assert len(smtp_sink.messages) == 4
    for mail in smtp_sink.messages:
        expected_id = rows[mail["To"]]
        assert mail["X-Comms-Message-Id"] == expected_id
        assert mail["Message-ID"] == f"<{expected_id}@comms.localhost>"
        assert "placeholder" not in mail.as_string()
    assert sorted(rows) == sorted(m["To"] for m in smtp_sink.messages)
    assert "doerte@xn--bcher-kva.example" in rows  # IDN domains are stored in their A-label form


def test_smtp_session_is_kept_between_batches(api, smtp_sink):
    """A P0 should not pay a TCP handshake and EHLO: the worker's session outlives its batch."""
    api.post("/api/v1/messages", SEND, format="json")
    drain_all()
    api.post("/api/v1/messages", {**SEND, "to": "grace@example.com"}, format="json")
    drain_all()
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.sessions == 1
