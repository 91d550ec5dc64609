"""Erasure of a person's delivery data (GDPR art. 17, EC-COM-019), run by the kernel's eraser registry.

Messages keep their row (status, times, channel: delivery statistics stay whole) but lose the
address, content, variables and archived render; delivery-log lines that quote an identifier are
dropped (the log refuses updates, deletes are allowed: migration 0002); inbox items are deleted.
"""

from __future__ import annotations

import logging

from django.core.files.storage import storages
from django.db import connection

from comms.erasure import ErasureSubject
from delivery.models import InAppNotification, Message

log = logging.getLogger(__name__)
ERASED = "erased"


def message_data_erase(*, subject: ErasureSubject) -> dict[str, int]:
    """Erase the subject's messages (theirs by recipient, or sent to one of their identifiers), in
    the subject's tenant only; publishes the erased message ids on `subject` for later erasers."""
    messages = Message.objects.filter(tenant_id=subject.tenant_id).filter(
        recipient_id=subject.recipient_id) | Message.objects.filter(tenant_id=subject.tenant_id,
                                                                    recipient_address__in=subject.identifiers)
    message_ids = list(messages.values_list("id", flat=True))
    artifacts = [a for a in messages.exclude(artifact="").values_list("artifact", flat=True)]
    done = {"messages": Message.objects.filter(id__in=message_ids).update(
        recipient_address=ERASED, subject="", body="", body_html="", variables={}, payload={}, metadata={},
        failure_reason="", artifact="", idempotency_key=None, updated_at=subject.now)}
    done["log_lines_dropped"] = _drop_log_lines(message_ids, subject.identifiers)
    done["inbox"] = InAppNotification.objects.filter(recipient_id=subject.recipient_id).delete()[0]
    storage = storages["artifacts"]
    for name in artifacts:
        try:
            storage.delete(name)
        except Exception:  # storage outage: the row no longer points at it; report, don't abort
            log.exception("could not delete artifact %s during erasure", name)
    subject.message_ids.extend(message_ids)
    return done


def _drop_log_lines(message_ids: list, identifiers: list[str]) -> int:
    """Delivery-log lines of the erased messages that quote an identifier (SMTP replies do)."""
    if not message_ids or not identifiers:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM delivery_deliverylog WHERE message_id = ANY(%s) AND EXISTS ("
            " SELECT 1 FROM unnest(%s::text[]) AS ident"
            " WHERE strpos(lower(detail), lower(ident)) > 0 OR strpos(lower(data::text), lower(ident)) > 0"
            " OR strpos(lower(provider_event_id), lower(ident)) > 0)",
            [message_ids, identifiers])
        return cursor.rowcount
