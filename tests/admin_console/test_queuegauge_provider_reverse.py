"""Migration 0016 runs backwards: the gauge's provider keys fold into the old key, figures unchanged."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from admin_console import stats
from delivery.models import Message
from delivery.services import SendSpec, message_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def _failed() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, priority, channel, status, reason, sum(n) FROM admin_console_queuegauge "
                       "WHERE status = 'failed' GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")
        return cursor.fetchall()


def test_0016_reverses_without_losing_counts(tenant):
    for i, provider in enumerate(("twilio", "sns", "sns")):  # two providers, one code: one key after reversal
        message = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"u{i}@example.com", subject="s", body="hi"))[0]
        Message.objects.filter(pk=message.pk).update(status="failed", provider=provider, failure_code="30003")
    stats.rollup()
    before = _failed()
    assert [row[-1] for row in before] == [3]
    try:
        call_command("migrate", "admin_console", "0015", verbosity=0)
        after = _failed()
        assert after == before
    finally:
        call_command("migrate", verbosity=0)
    assert _failed() == before
