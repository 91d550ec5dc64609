"""Escalation: when an in-app item is still unread after the step's delay, send on other channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.claims import due_rows
from comms.enums import Status
from comms.router.models import Escalation
from delivery.models import InAppNotification, Message
from delivery.services import SendSpec, message_enqueue


@dataclass
class EscalationStats:
    escalated: int = 0
    resolved: int = 0
    failed: int = 0


def escalations_run(*, now: datetime | None = None, limit: int = 500) -> EscalationStats:
    """Due escalations: read in time → resolved; otherwise one follow-up message (idempotent per item)."""
    now = now or timezone.now()
    stats = EscalationStats()
    pending = Escalation.objects.select_related("recipient", "tenant").filter(state=Escalation.State.PENDING)
    with due_rows(pending, now=now, limit=limit) as due:
        for item in due:
            read_at = (InAppNotification.objects.filter(message_id=item.message_id)
                       .values_list("read_at", flat=True).first())
            status = Message.objects.filter(pk=item.message_id).values_list("status", flat=True).first()
            if read_at is not None:
                item.state, item.detail = Escalation.State.RESOLVED, f"read at {read_at.isoformat()}"
                stats.resolved += 1
            elif status == Status.CANCELLED:
                item.state, item.detail = Escalation.State.RESOLVED, "in-app message was cancelled"
                stats.resolved += 1
            else:
                spec = SendSpec(channel=item.channels[0], fallback=tuple(item.channels[1:]),
                                recipient_id=item.recipient.external_id, template_key=item.template_key,
                                variables=item.variables, category=item.category, priority=item.priority,
                                metadata={"escalation_of": str(item.message_id)})
                try:
                    with transaction.atomic():
                        message, _ = message_enqueue(tenant=item.tenant, spec=spec, now=now,
                                                     idempotency_key=f"escalation:{item.message_id}")
                except errors.CommsError as exc:
                    item.state, item.detail = Escalation.State.FAILED, f"{exc.code}: {exc.message}"
                    stats.failed += 1
                else:
                    item.state, item.escalated_message_id = Escalation.State.SENT, message.id
                    item.detail = f"unread after the delay (in-app status {status}); sent on {message.channel}"
                    stats.escalated += 1
            item.save(update_fields=["state", "detail", "escalated_message_id"])
    return stats
