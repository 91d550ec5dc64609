"""Processing stored webhooks: idempotency, ordering, orphans, unknown formats, bad input."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process, webhook_reprocess, webhooks_process_pending, webhooks_sweep

pytestmark = pytest.mark.django_db


def test_duplicate_storm_changes_state_once(client, signer, sent_message):
    """The same SendGrid event delivered 46 times: 46 stored requests, one event, one status change."""
    sg = signer("sendgrid")
    message = sent_message()
    body = sg.events(ref=message.provider_ref, event="delivered", event_id="sg-evt-storm")
    for _ in range(46):
        assert sg.sign(body).send(client).status_code == 200
    assert WebhookEvent.objects.count() == 46
    webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert MessageEvent.objects.filter(message=message).count() == 1
    assert DeliveryLog.objects.filter(message=message, event="delivered").count() == 1
    states = list(WebhookEvent.objects.values_list("events_applied", "events_duplicate"))
    assert states.count((1, 0)) == 1 and states.count((0, 1)) == 45


@pytest.mark.parametrize("first,second,final", [
    ("bounce", "delivered", Status.BOUNCED),  # a late 'delivered' never overwrites 'bounced'
    ("delivered", "bounce", Status.BOUNCED),
    ("spamreport", "delivered", Status.COMPLAINED),
    ("delivered", "spamreport", Status.COMPLAINED),
])
def test_out_of_order_pairs_only_move_forward(client, signer, sent_message, first, second, final):
    sg = signer("sendgrid")
    message = sent_message()
    for event in (first, second):
        assert sg.sign(sg.events(ref=message.provider_ref, event=event)).send(client).status_code == 200
        webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == final
    # both events are kept in the history even though only one moved the status
    assert MessageEvent.objects.filter(message=message).count() == 2
    logs = list(DeliveryLog.objects.filter(message=message).values_list("event", "data__status_changed"))
    assert len(logs) == 2


def test_batch_with_several_events_and_messages(client, signer, sent_message):
    sg = signer("sendgrid")
    a, b = sent_message(address="ada@example.com"), sent_message(address="bob@example.com")
    events = json.loads(sg.events(ref=a.provider_ref, event="delivered")) + \
        json.loads(sg.events(ref=b.provider_ref, address="bob@example.com", event="open"))
    assert sg.sign(json.dumps(events)).send(client).status_code == 200
    webhooks_process_pending()
    row = WebhookEvent.objects.get()
    assert (row.events_total, row.events_applied, row.event_type) == (2, 2, "delivered,open")
    opened = MessageEvent.objects.get(message=b)
    assert (opened.event_type, opened.device_type, opened.client) == ("opened", "mobile", "Apple Mail")
    assert opened.ip_address == "203.0.113.0"  # stored truncated


def test_event_before_message_marked_sent_is_retried_then_applied(client, signer, sent_message, settings):
    """EC-COM-022: the webhook beats the engine's 'sent' write; it waits, then matches."""
    settings.COMMS_WEBHOOK_ORPHAN_BACKOFF = [0]
    sg = signer("sendgrid")
    message = sent_message(status=Status.SENDING, ref="")
    assert sg.sign(sg.events(ref="esp-123", event="delivered")).send(client).status_code == 200
    webhooks_process_pending()
    row = WebhookEvent.objects.get()
    assert row.state == "retrying" and row.events_orphan == 1
    Message.objects.filter(pk=message.pk).update(status=Status.SENT, provider_ref="esp-123", sent_at=timezone.now())
    assert webhooks_sweep() == 1
    row.refresh_from_db()
    message.refresh_from_db()
    assert row.state == "processed" and message.status == Status.DELIVERED


def test_event_for_unknown_message_becomes_orphan_after_retries(client, signer, settings):
    settings.COMMS_WEBHOOK_ORPHAN_BACKOFF = [0]
    settings.COMMS_WEBHOOK_ORPHAN_RETRIES = 2
    sg = signer("sendgrid")
    sg.sign(sg.events(ref="nobody", event="delivered")).send(client)
    webhooks_process_pending()
    webhooks_sweep()
    webhooks_sweep()
    row = WebhookEvent.objects.get()
    assert row.state == "orphan" and row.attempts == 3 and "never matched" in row.error
    assert webhooks_sweep() == 0  # kept for inspection, no longer retried


def test_unknown_event_type_is_stored_and_flagged(client, signer, sent_message):
    sg = signer("sendgrid")
    message = sent_message()
    events = json.loads(sg.events(ref=message.provider_ref, event="delivered"))
    events.append({**events[0], "event": "teleported", "sg_event_id": "sg-new-kind"})
    assert sg.sign(json.dumps(events)).send(client).status_code == 200
    webhooks_process_pending()
    row = WebhookEvent.objects.get()
    assert row.state == "flagged" and row.unknown and "unknown type" in row.error
    assert row.events_applied == 1  # the known event in the same post is not lost
    assert "teleported" in row.body


def test_malformed_json_is_kept_and_answered_400(client, signer):
    sg = signer("sendgrid")
    response = sg.sign('[{"event": "delivered",').send(client)
    assert response.status_code == 400 and response.json()["code"] == "COMMS_INVALID_JSON"
    row = WebhookEvent.objects.get()
    assert row.signature_valid is True and row.state == "malformed" and row.payload is None


def test_oversized_body_refused_per_provider_limit(client, signer, settings):
    settings.COMMS_WEBHOOK_MAX_BYTES = {**settings.COMMS_WEBHOOK_MAX_BYTES, "mailgun": 2048}
    mg = signer("mailgun")
    req = mg.event(ref="r", reason="x" * 4096)
    response = req.send(client)
    assert response.status_code == 413 and response.json()["code"] == "COMMS_PAYLOAD_TOO_LARGE"
    assert not WebhookEvent.objects.exists()
    assert mg.event(ref="r").send(client).status_code == 200  # a normal one still goes through


def test_flood_is_rate_limited_per_provider_with_retry_after(client, signer, settings):
    settings.COMMS_WEBHOOK_RATES = {"default": "1000/min", "postmark": "5/min"}
    pm = signer("postmark")
    codes = [pm.delivery(ref=f"r{i}").send(client) for i in range(8)]
    assert [r.status_code for r in codes] == [200] * 5 + [429] * 3
    assert int(codes[-1]["Retry-After"]) >= 1 and codes[-1].json()["code"] == "COMMS_RATE_LIMITED"
    assert WebhookEvent.objects.count() == 5  # everything accepted is stored; the rest is retried by Postmark
    mg = signer("mailgun")  # other providers have their own budget
    assert mg.event(ref="r").send(client).status_code == 200


def test_mailgun_replayed_token_refused(client, signer, sent_message):
    mg = signer("mailgun")
    message = sent_message()
    first = mg.event(ref=message.provider_ref, token="t" * 50)
    assert first.send(client).status_code == 200
    replay = first.send(client)
    assert replay.status_code == 401
    assert WebhookEvent.objects.filter(signature_valid=False, signature_error__contains="replay").count() == 1


def test_invalid_rows_are_never_processed_even_by_reprocess(client, signer, sent_message):
    sg = signer("sendgrid")
    message = sent_message()
    sg.sign(sg.events(ref=message.provider_ref, event="bounce"), key=sg.other).send(client)
    row = WebhookEvent.objects.get()
    assert webhook_process(webhook_id=row.pk).state == "rejected"
    assert webhook_reprocess(webhook_id=row.pk).state == "rejected"
    message.refresh_from_db()
    assert message.status == Status.SENT and not MessageEvent.objects.exists()


def test_reprocess_after_a_processing_failure(client, signer, sent_message):
    """A row that failed (here: its message did not exist yet and retries are off) is re-run by the admin."""
    sg = signer("sendgrid")
    sg.sign(sg.events(ref="later-ref", event="delivered")).send(client)
    row = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=row.pk).update(attempts=99)
    webhook_process(webhook_id=row.pk)
    row.refresh_from_db()
    assert row.state == "orphan"
    message = sent_message(ref="later-ref")
    result = webhook_reprocess(webhook_id=row.pk)
    message.refresh_from_db()
    assert result.state == "processed" and message.status == Status.DELIVERED
    from comms.models import AuditEntry

    assert AuditEntry.objects.filter(action="webhook.reprocessed", target_id=str(row.pk)).exists()


def test_mailgun_postmark_normalisation(client, signer, sent_message):
    mg, pm = signer("mailgun"), signer("postmark")
    a, b, c = sent_message(), sent_message(address="bob@example.com"), sent_message(address="cy@example.com")
    mg.event(ref=a.provider_ref, event="failed", severity="permanent").send(client)
    mg.event(ref=b.provider_ref, event="failed", severity="temporary", address="bob@example.com").send(client)
    pm.bounce(ref=c.provider_ref, kind="HardBounce", address="cy@example.com").send(client)
    webhooks_process_pending()
    kinds = {e.message_id: (e.event_type, e.bounce_type) for e in MessageEvent.objects.all()}
    assert kinds == {a.id: ("bounced", "hard"), b.id: ("bounced", "soft"), c.id: ("bounced", "hard")}
    statuses = dict(Message.objects.values_list("id", "status"))
    assert statuses == {a.id: "bounced", b.id: "sent", c.id: "bounced"}  # a soft bounce is not final


def test_raw_row_keeps_audit_headers_but_not_credentials(client, signer):
    pm = signer("postmark")
    pm.delivery(ref="r").send(client)
    row = WebhookEvent.objects.get()
    assert "Authorization" not in row.headers and row.content_type == "application/json"
    assert row.received_at and row.url.endswith("/webhooks/postmark")
    with connection.cursor() as cursor:  # the payload is queryable JSON
        cursor.execute("SELECT payload->>'RecordType' FROM webhooks_webhookevent WHERE id = %s", [row.pk])
        assert cursor.fetchone()[0] == "Delivery"
