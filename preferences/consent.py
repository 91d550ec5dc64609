"""Writing the consent ledger: every row tied to the people it concerns, each cause recorded once.

A grant or withdrawal made for an *address* (an SMS STOP/START, an unsubscribe link of a message
sent to a bare address, a re-permission) concerns every directory entry of the tenant that holds
that address: the GDPR export of each of them (``GET /recipients/{id}/consent``, art. 7(1) and 15)
must show it. So such a record is written once per matching recipient, linked to it; only an
address no recipient holds gets a single row without a recipient. Every row keeps the address hash,
so the send-time decision finds it by address as before.

A cause that has an id of its own (the provider's inbound message id, the unsubscribe token) is
passed as ``source_ref``: a unique index on (tenant, source_ref, subject) and INSERT … ON CONFLICT
DO NOTHING make a redelivery (Twilio retries a webhook it got no answer to; mailbox providers
repeat RFC 8058 POSTs) a no-op, also when two copies race.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from comms import errors
from comms.models import Recipient, Tenant
from preferences.hashing import address_hash, canonical_address, keyed_hash, subject_hash
from preferences.models import ConsentAction, ConsentRecord


def recipients_with_address(*, tenant: Tenant, channel: str, address: str) -> list[Recipient]:
    """Directory entries of `tenant` that hold `address` on `channel` (a number may be shared, e.g.
    a family phone, and an e-mail address may appear under several ids of the calling app)."""
    if not address or channel not in ("email", "sms", "voice"):
        return []
    canonical = canonical_address(channel, address)
    if channel == "email":
        match = Q(email__iexact=canonical)  # compared case-insensitively, as the suppression hash does
    else:
        match = Q(phone__in={canonical, address.strip()})
    return list(Recipient.objects.filter(match, tenant_id=tenant.pk).exclude(external_id__startswith="erased-")
                .order_by("created_at", "pk"))


def token_ref(token: str) -> str:
    """The ledger's key for a link token: a keyed hash (the token itself is a credential)."""
    return "token:" + keyed_hash(f"token:{token}")[:40]


def consent_record(*, tenant: Tenant, action: str, source: str, recipient: Recipient | None = None,
                   address: str = "", channel: str = "", category: str = "", ip: str | None = None,
                   user_agent: str | None = "", consent_text: str = "", legal_basis: str = "consent",
                   at: dt.datetime | None = None, source_ref: str = "",
                   ref_once_per_grant: bool = False) -> list[ConsentRecord]:
    """Append a grant/withdrawal to the ledger (never updated, never deleted); the rows, one per subject.

    Without `recipient`, the rows go to every recipient holding `address` (see the module docstring).
    With `source_ref`, a subject gets at most one row per ref: a repeat returns the row already
    there. `ref_once_per_grant` is for long-lived links (an unsubscribe token): the same link used
    again after a later grant (the person re-subscribed) is a new withdrawal and is recorded.
    """
    if action not in ConsentAction.values:
        raise errors.ValidationFailed(f"Unknown consent action '{action}'.")
    addr_hash = address_hash(channel, address) if address and channel else ""
    if recipient is not None:
        subjects: list[tuple[Recipient | None, str]] = [(recipient, subject_hash(tenant.pk, recipient.external_id))]
    else:
        holders = recipients_with_address(tenant=tenant, channel=channel, address=address)
        subjects = [(r, subject_hash(tenant.pk, r.external_id)) for r in holders] or [(None, addr_hash)]
    when = at or timezone.now()
    rows = [ConsentRecord(
        tenant_id=tenant.pk, recipient=who, subject_hash=subject, address_hash=addr_hash, channel=channel,
        category=category, action=action, source=source[:64], ip=ip or None, user_agent=(user_agent or "")[:500],
        consent_text=consent_text, legal_basis=legal_basis, at=when,
        source_ref=_ref(tenant, subject, source_ref, ref_once_per_grant)) for who, subject in subjects]
    if not source_ref:
        return ConsentRecord.objects.bulk_create(rows)
    # ON CONFLICT DO NOTHING: a concurrent or earlier copy of the same cause wins, nothing is raised.
    ConsentRecord.objects.bulk_create(rows, ignore_conflicts=True)
    keys = Q()
    for row in rows:
        keys |= Q(source_ref=row.source_ref, subject_hash=row.subject_hash)
    return list(ConsentRecord.objects.filter(keys, tenant_id=tenant.pk).order_by("id"))


def _ref(tenant: Tenant, subject: str, source_ref: str, once_per_grant: bool) -> str:
    if not source_ref or not once_per_grant:
        return source_ref[:128]
    last_grant = ConsentRecord.objects.filter(tenant_id=tenant.pk, subject_hash=subject,
                                              action=ConsentAction.GRANTED).aggregate(m=Max("id"))["m"]
    return f"{source_ref[:100]}@{last_grant or 0}"


def consent_ref_seen(*, tenant: Tenant, source_ref: str) -> bool:
    """Has a cause with this ref already been applied in `tenant`? Waits for a concurrent copy of it
    (a transaction-scoped advisory lock on the ref) so two racing redeliveries apply it once."""
    if not source_ref:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"consent:{tenant.pk}:{source_ref}"])
    return ConsentRecord.objects.filter(tenant_id=tenant.pk, source_ref=source_ref[:128]).exists()
