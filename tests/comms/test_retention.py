"""Retention: policies per kind and tenant, the batched removal, archive to S3 (moto) and restore."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from datetime import timedelta

import boto3
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone
from moto.server import ThreadedMotoServer
from uuid_utils.compat import uuid7

from comms.audit import audit_record
from comms.devserver.embedded import free_port
from comms.errors import ArchiveUnavailable, RetentionBelowMinimum, RetentionNotAllowed, RetentionUnknownKind
from comms.models import AuditEntry, RetentionPolicy, RetentionRun
from comms.retention import retention_policy_set, retention_run
from delivery.models import DeliveryLog, InAppNotification, Message
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def msg(tenant, *, days: float, status: str = "delivered", sent_days: float | None = None) -> Message:
    """A message created `days` ago (its uuid7 id of that time, as the application makes it) with one log."""
    at = timezone.now() - timedelta(days=days)
    m = Message.objects.create(id=uuid7(timestamp=int(at.timestamp())), tenant=tenant, channel="email",
                               status=status, recipient_address="ada@example.com", created_at=at, updated_at=at,
                               next_attempt_at=at,
                               sent_at=None if sent_days is None else timezone.now() - timedelta(days=sent_days))
    DeliveryLog.objects.create(message=m, event="sent", at=at)
    return m


def alive(*messages: Message) -> set:
    return set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", flat=True))


def test_policy_validation_is_typed(tenant):
    with pytest.raises(RetentionNotAllowed) as e:
        retention_policy_set(tenant=None, kind="consent", days=3650, actor=None)
    assert e.value.code == "COMMS_RETENTION_NOT_ALLOWED"
    with pytest.raises(RetentionBelowMinimum) as e:
        retention_policy_set(tenant=tenant, kind="messages", days=6, actor=None)
    assert e.value.details["minimum"] == 7 and e.value.status == 422
    with pytest.raises(RetentionBelowMinimum):
        retention_policy_set(tenant=None, kind="audit", days=30, actor=None)
    with pytest.raises(RetentionUnknownKind):
        retention_policy_set(tenant=None, kind="everything", days=30, actor=None)
    assert not RetentionPolicy.objects.exists()
    policy = retention_policy_set(tenant=tenant, kind="messages", days=30, actor="ops")
    retention_policy_set(tenant=tenant, kind="messages", days=45, actor="ops")
    policy.refresh_from_db()
    assert policy.days == 45 and RetentionPolicy.objects.count() == 1
    entry = AuditEntry.objects.filter(action="retention.policy_set").order_by("-id").first()
    assert entry.diff == {"days": [30, 45]} and entry.actor_label == "ops"
    # The admin form gets the same rule as a field error.
    with pytest.raises(ValidationError) as v:
        RetentionPolicy(tenant=tenant, kind="consent", days=9999).clean()
    assert "COMMS_RETENTION_NOT_ALLOWED" in str(v.value)
    with pytest.raises(RetentionNotAllowed):
        retention_run(kinds=["consent"])


def test_messages_in_flight_are_never_removed_whatever_their_age(tenant):
    old = {s: msg(tenant, days=400, status=s) for s in ("queued", "scheduled", "sending", "deferred")}
    done = [msg(tenant, days=400, status=s) for s in ("delivered", "failed", "dead", "bounced", "cancelled")]
    recent = msg(tenant, days=10)
    [result] = retention_run(kinds=["messages"], archive=False, batch=2, pause=0)
    assert result.removed == 5 and result.children == {"delivery_deliverylog": 5} and result.batches == 3
    assert alive(*old.values(), *done, recent) == {m.pk for m in [*old.values(), recent]}
    assert DeliveryLog.objects.filter(message_id__in=[m.pk for m in old.values()]).count() == 4
    run = RetentionRun.objects.get(kind="messages")
    assert run.status == "ok" and run.removed == 5 and run.children_removed == {"delivery_deliverylog": 5}
    # A message sent recently (created long ago, scheduled far ahead) ages from its send.
    late = msg(tenant, days=200, status="sent", sent_days=5)
    retention_run(kinds=["messages"], archive=False, pause=0)
    assert alive(late) == {late.pk}


@pytest.mark.django_db(transaction=True)  # the second session must see the rows
def test_a_row_a_worker_holds_is_skipped_not_waited_for(tenant):
    held, free = msg(tenant, days=100), msg(tenant, days=100)
    worker = connections.create_connection("default")  # a second session, as a worker's would be
    worker.set_autocommit(False)
    try:
        worker.cursor().execute("SELECT 1 FROM delivery_message WHERE id = %s FOR UPDATE", [held.pk])
        [result] = retention_run(kinds=["messages"], archive=False, pause=0)
        assert result.removed == 1 and alive(held, free) == {held.pk}
    finally:
        worker.rollback()
        worker.close()


def test_per_tenant_override_and_deployment_wide_row(tenant, other_tenant):
    a40, b40, b100 = msg(tenant, days=40), msg(other_tenant, days=40), msg(other_tenant, days=100)
    retention_policy_set(tenant=tenant, kind="messages", days=30, actor=None)
    retention_run(kinds=["messages"], archive=False, pause=0)
    assert alive(a40, b40, b100) == {b40.pk}  # tenant's 30 d; the other tenant keeps the default 90 d
    retention_policy_set(tenant=None, kind="messages", days=35, actor=None)
    retention_run(kinds=["messages"], archive=False, pause=0)
    assert alive(b40) == set()


def test_dry_run_counts_and_deletes_nothing(tenant, capsys):
    old = [msg(tenant, days=100) for _ in range(3)]
    call_command("retention_run", "--dry-run", "--kind", "messages", "--no-archive")
    assert "messages: would remove 3" in capsys.readouterr().out
    assert len(alive(*old)) == 3 and RetentionRun.objects.get().dry_run


def test_other_kinds_webhooks_tracking_in_app_and_audit(tenant):
    now = timezone.now()
    waiting = WebhookEvent.objects.create(provider="sendgrid", state="received", received_at=now - timedelta(days=60))
    retrying = WebhookEvent.objects.create(provider="sendgrid", state="retrying", received_at=now - timedelta(days=60))
    done = WebhookEvent.objects.create(provider="sendgrid", state="processed", received_at=now - timedelta(days=60))
    fresh = WebhookEvent.objects.create(provider="sendgrid", state="processed", received_at=now)
    m = msg(tenant, days=1)
    old_event = MessageEvent.objects.create(tenant=tenant, message=m, event_type="opened", provider="comms",
                                            recorded_at=now - timedelta(days=200))
    new_event = MessageEvent.objects.create(tenant=tenant, message=m, event_type="opened", provider="comms")
    recipient = tenant.recipients.create(external_id="ada")
    at = now - timedelta(days=100)
    item = InAppNotification.objects.create(id=uuid7(timestamp=int(at.timestamp())), tenant=tenant,
                                            recipient=recipient, message=m, title="old", created_at=at)
    pinned = InAppNotification.objects.create(id=uuid7(timestamp=int(at.timestamp())), tenant=tenant,
                                              recipient=recipient, message=msg(tenant, days=1), title="pinned",
                                              pinned=True, created_at=at)
    old_audit = audit_record(actor=None, action="test.old", target=tenant)
    # The trigger refuses UPDATE, so an ancient entry is inserted with its date rather than backdated.
    with connection.cursor() as cur:
        cur.execute("INSERT INTO admin_console_auditentry (at, actor_label, action, target_type, target_id, "
                    "target_label, diff, reason) VALUES (now() - interval '500 days', 'x', 'test.ancient', 't', "
                    "'1', '', '{}', '') RETURNING id")
        ancient = cur.fetchone()[0]
    results = {r.kind: r for r in retention_run(archive=False, pause=0)}
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {waiting.pk, retrying.pk, fresh.pk}
    assert results["webhooks"].removed == 1 and done.pk not in set(WebhookEvent.objects.values_list("pk", flat=True))
    assert list(MessageEvent.objects.values_list("pk", flat=True)) == [new_event.pk] and old_event.pk
    assert set(InAppNotification.objects.values_list("pk", flat=True)) == {pinned.pk} and item.pk
    assert not AuditEntry.objects.filter(pk=ancient).exists() and AuditEntry.objects.filter(pk=old_audit.pk).exists()
    assert results["audit"].removed == 1


def test_audit_log_stays_append_only_outside_retention(tenant):
    entry = audit_record(actor=None, action="test.keep", target=tenant)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM admin_console_auditentry WHERE id = %s", [entry.pk])
    # Even under the retention flag a recent entry cannot go (the trigger's own 365-day floor).
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT set_config('comms.retention', 'on', true)")
        cur.execute("DELETE FROM admin_console_auditentry WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.fixture
def s3(settings, monkeypatch):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1")
    bucket = f"comms-archive-{uuid.uuid4().hex[:8]}"  # moto's store is per process, shared by tests
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    settings.COMMS_ARCHIVE_BUCKET = bucket
    settings.COMMS_ARCHIVE_PREFIX = "prod"
    settings.COMMS_ARCHIVE_ENDPOINT_URL = endpoint
    settings.COMMS_ARCHIVE_REGION = "eu-west-1"
    yield client, bucket
    server.stop()


def test_archive_then_delete_then_restore_into_a_scratch_schema(tenant, other_tenant, s3):
    s3, bucket = s3
    day_a = [msg(tenant, days=120) for _ in range(3)]
    b = msg(other_tenant, days=120)
    kept = [msg(tenant, days=120, status="queued"), msg(tenant, days=5)]
    [result] = retention_run(kinds=["messages"], batch=2, pause=0)
    assert result.removed == 4 and result.archived == 4 and alive(*day_a, b, *kept) == {m.pk for m in kept}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    manifests = [k for k in keys if k.endswith(".manifest.json")]
    day = day_a[0].created_at.date().isoformat()
    assert {k.split("/")[2] for k in manifests} == {str(tenant.pk), str(other_tenant.pk)}
    assert all(k.startswith(f"prod/messages/") and f"/{day}/" in k for k in keys)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=next(
        k for k in manifests if f"/{tenant.pk}/" in k))["Body"].read())
    assert manifest["rows"] == {"delivery_message": 3, "delivery_deliverylog": 3} and len(manifest["parts"]) == 2
    part = manifest["parts"][0]
    body = s3.get_object(Bucket=bucket, Key=part["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == part["sha256"]
    lines = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    assert {line["table"] for line in lines} == {"delivery_message", "delivery_deliverylog"}
    assert manifest["time_range"][0] <= manifest["time_range"][1]
    RetentionRun.objects.get(kind="messages", status="ok", archived=4)

    call_command("archive_restore", "--kind", "messages", "--date", day, "--schema", "audit_test",
                 "--tenant", str(tenant.pk))
    with connection.cursor() as cur:
        cur.execute("SELECT id, status, recipient_address FROM audit_test.delivery_message ORDER BY id")
        restored = cur.fetchall()
        cur.execute("SELECT count(*) FROM audit_test.delivery_deliverylog")
        logs = cur.fetchone()[0]
        cur.execute("DROP SCHEMA audit_test CASCADE")
    assert [r[0] for r in restored] == sorted(m.pk for m in day_a) and logs == 3
    assert all(r[1] == "delivered" and r[2] == "ada@example.com" for r in restored)
    with pytest.raises(CommandError, match="no archive"):
        call_command("archive_restore", "--kind", "messages", "--date", "2001-01-01", "--schema", "audit_none")
    with pytest.raises(CommandError, match="schema"):
        call_command("archive_restore", "--kind", "messages", "--date", day, "--schema", "public")


def test_tampered_archive_part_is_refused(tenant, s3):
    s3, bucket = s3
    m = msg(tenant, days=120)
    retention_run(kinds=["messages"], pause=0)
    part = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(".gz"))
    s3.put_object(Bucket=bucket, Key=part, Body=gzip.compress(b'{"table":"delivery_message","row":{}}\n'))
    with pytest.raises(CommandError, match="COMMS_ARCHIVE_CORRUPT"):
        call_command("archive_restore", "--kind", "messages", "--date", m.created_at.date().isoformat(),
                     "--schema", "audit_bad")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit_bad'")
        assert cur.fetchone()[0] == 0  # one transaction: nothing half-restored


def test_storage_unreachable_deletes_nothing(tenant, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.COMMS_ARCHIVE_BUCKET = "comms-archive"
    settings.COMMS_ARCHIVE_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens
    settings.COMMS_ARCHIVE_REGION = "eu-west-1"
    old = [msg(tenant, days=120) for _ in range(3)]
    with pytest.raises(ArchiveUnavailable) as e:
        retention_run(kinds=["messages"], pause=0)
    assert e.value.code == "COMMS_ARCHIVE_UNAVAILABLE"
    assert len(alive(*old)) == 3 and DeliveryLog.objects.filter(message_id__in=[m.pk for m in old]).count() == 3
    run = RetentionRun.objects.get(kind="messages")
    assert run.status == "failed" and run.removed == 0 and "127.0.0.1" in run.error + str(e.value.details)
    with pytest.raises(CommandError, match="COMMS_ARCHIVE_UNAVAILABLE"):
        call_command("retention_run", "--kind", "messages")
    assert len(alive(*old)) == 3


def test_closed_conversations_go_with_their_messages_open_or_with_files_stay(tenant):
    from comms.conversations.models import Attachment, Conversation, ConversationMessage, MessageRevision, Receipt

    old = timezone.now() - timedelta(days=400)

    def conversation(state: str, closed_at=old) -> Conversation:
        c = Conversation.objects.create(tenant=tenant, state=state, closed_at=closed_at)
        p = c.participants.create(tenant=tenant, address="ada@example.com")
        m = ConversationMessage.objects.create(tenant=tenant, conversation=c, index=1, sender=p, body="hi")
        MessageRevision.objects.create(message=m, action="edit", editor=p, previous_body="hello")
        Receipt.objects.create(message=m, participant=p, read_at=old)
        return c

    gone, still_open, recent = conversation("closed"), conversation("open", None), conversation("closed", timezone.now())
    with_file = conversation("closed")
    Attachment.objects.create(tenant=tenant, conversation=with_file, file="attachments/x.png", content_type="image/png",
                              size=1, sha256="0" * 64)
    [result] = retention_run(kinds=["conversations"], archive=False, pause=0)
    assert result.removed == 1 and set(Conversation.objects.values_list("pk", flat=True)) == {
        still_open.pk, recent.pk, with_file.pk}
    assert result.children == {"conversations_messagerevision": 1, "conversations_receipt": 1,
                               "conversations_conversationmessage": 1, "conversations_participant": 1}
    assert not ConversationMessage.objects.filter(conversation_id=gone.pk).exists()
    assert MessageRevision.objects.count() == Receipt.objects.count() == 3


def test_beat_task_surfaces_an_unreachable_archive_and_deletes_nothing(tenant, settings, monkeypatch):
    from comms.tasks import retention_daily

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.COMMS_ARCHIVE_BUCKET = "comms-archive"
    settings.COMMS_ARCHIVE_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.COMMS_ARCHIVE_REGION = "eu-west-1"
    old = msg(tenant, days=120)
    with pytest.raises(ArchiveUnavailable):  # called directly, Celery's retry re-raises the cause
        retention_daily()
    assert alive(old) == {old.pk}
    assert settings.CELERY_BEAT_SCHEDULE["comms-retention-daily"]["task"] == "comms.tasks.retention_daily"
