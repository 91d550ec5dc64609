"""GDPR erasure (EC-COM-019): forget a person everywhere, and never contact their addresses again.

One transaction: the addresses go on the suppression list as hashes only (reason ``legal``, no
encrypted copy); the consent ledger keeps every record with the identity reduced to its keyed
hash (the append-only trigger lets exactly this redaction through, see migration 0002); messages
lose their addresses, content, variables and archived renders; delivery-log lines that quote an
address are dropped (the log refuses updates, deletes are allowed); inbox items, devices,
preferences, quiet hours and subscriptions are deleted; the directory entry is anonymised.

Apps that keep their own copies of addresses (tracking events, raw provider webhooks) add an
eraser with :func:`register` (called from their ``AppConfig.ready``); it runs inside the same
transaction with the identifiers and the ids of the erased messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.files.storage import storages
from django.db import connection, transaction
from django.utils import timezone

from comms.models import Device, Recipient
from preferences.hashing import address_hash, subject_hash
from preferences.models import ChannelSubscription, QuietHours, SuppressionReason, UserPreference

log = logging.getLogger(__name__)
ERASED = "erased"
_erasers: list[Callable[..., int]] = []


def register(eraser: Callable[..., int]) -> Callable[..., int]:
    """Add `eraser(*, tenant_id, identifiers, message_ids) -> rows changed` to every erasure."""
    if eraser not in _erasers:
        _erasers.append(eraser)
    return eraser


@transaction.atomic
def recipient_erase(*, recipient: Recipient, now=None) -> dict[str, Any]:
    """Erase `recipient`; returns what was done (counts), for the caller's audit trail."""
    from delivery.models import DeliveryLog, InAppNotification, Message
    from preferences.services import suppression_add

    now = now or timezone.now()
    tenant = recipient.tenant
    recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
    devices = list(Device.objects.filter(recipient=recipient).values_list("token", flat=True))
    addresses = [(ch, a) for ch, a in (("email", recipient.email), ("sms", recipient.phone)) if a]
    identifiers = sorted({a for _, a in addresses} | {recipient.external_id} | set(devices))
    done: dict[str, Any] = {"suppressed": 0}

    for channel, address in addresses:
        suppression_add(tenant=tenant, channel=channel, address=address, reason=SuppressionReason.LEGAL,
                        source="gdpr_erasure", keep_copy=False)
        done["suppressed"] += 1
    for token in devices:
        suppression_add(tenant=tenant, channel="push", address=token, reason=SuppressionReason.LEGAL,
                        source="gdpr_erasure", keep_copy=False)

    hashes = [address_hash(ch, a) for ch, a in addresses]
    # The person's own rows, and rows of their addresses tied to nobody. A row of a shared number that
    # is linked to another recipient (a STOP from a family phone) is that other person's record.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL comms.consent_erasure = 'on'")
        cursor.execute(
            "UPDATE preferences_consentrecord SET recipient_id = NULL, ip = NULL, user_agent = '', erased_at = %s "
            "WHERE tenant_id = %s AND erased_at IS NULL AND (recipient_id = %s"
            " OR (recipient_id IS NULL AND address_hash = ANY(%s)))",
            [now, tenant.pk, recipient.pk, hashes])
        done["consent_redacted"] = cursor.rowcount
        cursor.execute("SET LOCAL comms.consent_erasure = 'off'")

    messages = Message.objects.filter(tenant=tenant).filter(
        recipient_id=recipient.pk) | Message.objects.filter(tenant=tenant, recipient_address__in=identifiers)
    message_ids = list(messages.values_list("id", flat=True))
    artifacts = [a for a in messages.exclude(artifact="").values_list("artifact", flat=True)]
    done["messages"] = Message.objects.filter(id__in=message_ids).update(
        recipient_address=ERASED, subject="", body="", body_html="", variables={}, payload={}, metadata={},
        failure_reason="", artifact="", idempotency_key=None, updated_at=now)
    done["log_lines_dropped"] = _drop_log_lines(message_ids, identifiers, DeliveryLog)
    done["inbox"] = InAppNotification.objects.filter(recipient=recipient).delete()[0]
    storage = storages["artifacts"]
    for name in artifacts:
        try:
            storage.delete(name)
        except Exception:  # storage outage: the row no longer points at it; report, don't abort
            log.exception("could not delete artifact %s during erasure", name)

    done["devices"] = Device.objects.filter(recipient=recipient).delete()[0]
    UserPreference.objects.filter(recipient=recipient).delete()
    QuietHours.objects.filter(recipient=recipient).delete()
    ChannelSubscription.objects.filter(recipient=recipient).delete()
    for eraser in _erasers:
        done[getattr(eraser, "__name__", "eraser")] = eraser(tenant_id=tenant.pk, identifiers=identifiers,
                                                           message_ids=message_ids)

    # The subject hash links the pseudonym to the consent ledger; the row's own id keeps it unique when
    # the same external id is created and erased again (two erased rows would otherwise collide: a 500).
    row_tag = str(recipient.pk).replace("-", "")[-12:]
    pseudonym = f"{ERASED}-{subject_hash(tenant.pk, recipient.external_id)[:24]}-{row_tag}"
    Recipient.objects.filter(pk=recipient.pk).update(external_id=pseudonym, email="", phone="", attributes={},
                                                     locale="en-US", timezone="UTC", updated_at=now)
    done["pseudonym"] = pseudonym
    return done


def _drop_log_lines(message_ids: list, identifiers: list[str], DeliveryLog) -> int:
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


# -- stored copies in other apps' tables ----------------------------------------------------------
# Provider events and raw webhook bodies quote the address. These erasers blank what identifies the
# person and keep the event itself (type, time, provider), so delivery statistics stay whole. They
# are registered here, beside the rule they serve, and skip tables that are not installed.

def _table_exists(name: str) -> bool:
    return name in connection.introspection.table_names()


def erase_tracking_events(*, tenant_id, identifiers: list[str], message_ids: list) -> int:
    if not _table_exists("tracking_messageevent"):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_messageevent SET recipient_address = '', ip_address = NULL, user_agent = '', "
            "reason = '', data = '{}'::jsonb, link_url = '', geo_city = '' "
            "WHERE tenant_id = %s AND (message_id = ANY(%s) OR lower(recipient_address) = ANY(%s))",
            [tenant_id, message_ids, [i.lower() for i in identifiers]])
        return cursor.rowcount


def erase_webhook_bodies(*, tenant_id, identifiers: list[str], message_ids: list) -> int:
    """Raw provider requests (kept for audit and replay) that concern the person: body emptied.
    Found by message id, or by the identifier in the body (an inbound SMS names only the number)."""
    if not _table_exists("webhooks_webhookevent") or not identifiers:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE webhooks_webhookevent SET body = '', payload = NULL, headers = '{}'::jsonb, url = '' "
            "WHERE message_id = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(%s::text[]) AS ident "
            " WHERE strpos(lower(body), lower(ident)) > 0 OR strpos(lower(url), lower(ident)) > 0 "
            "    OR strpos(lower(body), lower(replace(ident, '+', '%%2B'))) > 0)",
            [message_ids, identifiers])
        return cursor.rowcount


register(erase_tracking_events)
register(erase_webhook_bodies)
