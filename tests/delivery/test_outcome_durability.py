"""Outcome writes skip the WAL flush wait per transaction, never per session (PgBouncer-safe)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from comms.enums import Status
from delivery.models import Message
from delivery.providers.base import SendResult
from delivery.services import SendSpec, claim_batch, drain_all, message_enqueue
from delivery.services.engine import DrainStats, record_outcome

pytestmark = pytest.mark.django_db(transaction=True)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def _claimed(tenant) -> Message:
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="ada@example.com", subject="s", body="b"))
    [message] = claim_batch(max_priority=4, limit=1, owner="durability")
    return message


def _record_in_a_transaction(message: Message) -> tuple[str, str]:
    """synchronous_commit inside the outcome's transaction, and after it ended."""
    with transaction.atomic():
        record_outcome(message, SendResult.sent("ref-1"), owner="durability", provider="smtp",
                       now=message.updated_at, stats=DrainStats())
        inside = _synchronous_commit()
    return inside, _synchronous_commit()


def test_outcome_write_is_asynchronous_for_its_own_transaction_only(tenant):
    message = _claimed(tenant)
    assert _record_in_a_transaction(message) == ("off", "on")
    assert Message.objects.get(id=message.id).status == Status.SENT


def test_sync_commit_setting_keeps_outcome_writes_synchronous(tenant, settings):
    settings.COMMS_OUTCOME_SYNC_COMMIT = True
    assert _record_in_a_transaction(_claimed(tenant)) == ("on", "on")


def test_a_drain_leaves_no_session_setting_behind(tenant, smtp_sink):
    """Behind PgBouncer (transaction mode) a session SET would stay on a shared server connection and
    make other clients' commits (an API insert answered 202) asynchronous."""
    assert _synchronous_commit() == "on"
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="bob@example.com", subject="s", body="b"))
    assert drain_all().sent == 1
    assert _synchronous_commit() == "on"
