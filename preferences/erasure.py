"""GDPR erasure (EC-COM-019): forget a person everywhere, and never contact their addresses again.

One transaction: the addresses go on the suppression list as hashes only (reason ``legal``, no
encrypted copy); the consent ledger keeps every record with the identity reduced to its keyed
hash (the append-only trigger lets exactly this redaction through, see migration 0002); devices,
preferences, quiet hours and subscriptions are deleted; the directory entry is anonymised.

The other apps' data (delivery: messages, log lines, inbox, archived renders; tracking: events;
webhooks: raw bodies) is erased by each app's own eraser, registered with the kernel
(``comms.erasure``) in its ``AppConfig.ready`` and run here inside the same transaction: this app
never writes another app's tables, and does not import the apps above it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from comms.erasure import ErasureSubject, erasure_run
from comms.models import Device, Recipient
from preferences.hashing import address_hash, subject_hash
from preferences.models import ChannelSubscription, QuietHours, SuppressionReason, UserPreference

ERASED = "erased"


@transaction.atomic
def recipient_erase(*, recipient: Recipient, now=None) -> dict[str, Any]:
    """Erase `recipient`; returns what was done (counts), for the caller's audit trail."""
    from preferences.services import suppression_add  # services re-exports this module's recipient_erase

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

    done["devices"] = Device.objects.filter(recipient=recipient).delete()[0]
    UserPreference.objects.filter(recipient=recipient).delete()
    QuietHours.objects.filter(recipient=recipient).delete()
    ChannelSubscription.objects.filter(recipient=recipient).delete()
    # Messages, logs, inbox (delivery), then the copies kept of them (tracking events, raw webhooks).
    done.update(erasure_run(subject=ErasureSubject(tenant_id=tenant.pk, recipient_id=recipient.pk,
                                                   identifiers=identifiers, now=now)))

    # The subject hash links the pseudonym to the consent ledger; the row's own id keeps it unique when
    # the same external id is created and erased again (two erased rows would otherwise collide: a 500).
    row_tag = str(recipient.pk).replace("-", "")[-12:]
    pseudonym = f"{ERASED}-{subject_hash(tenant.pk, recipient.external_id)[:24]}-{row_tag}"
    Recipient.objects.filter(pk=recipient.pk).update(external_id=pseudonym, email="", phone="", attributes={},
                                                     locale="en-US", timezone="UTC", updated_at=now)
    done["pseudonym"] = pseudonym
    return done
