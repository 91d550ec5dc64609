"""Preference, consent and suppression use cases; the one public surface other apps call.

Every change a person makes writes its preference rows and an append-only consent record in the
same transaction (who, when, from which IP and user agent, with the exact text shown).
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from comms import errors
from comms.audit import audit_record
from comms.crypto import encrypt_json
from comms.models import Recipient, Tenant
from preferences import catalogue
from preferences.decision import (  # noqa: F401  (re-exported: the decision API)
    ALLOW, BLOCK, DEFER, DIGEST, Decision, Item, decide_many,
)
# The ledger writer (fan-out to every holder of an address, one row per cause), re-exported.
from preferences.consent import consent_record, consent_ref_seen, token_ref  # noqa: F401
from preferences.hashing import address_hash, canonical_address
from preferences.models import (
    REASON_RANK, ChannelSubscription, ConsentAction, Frequency, QuietHours, SubscriptionStatus,
    Suppression, SuppressionReason, UpdatedBy, UserPreference,
)
from preferences.tokens import (  # noqa: F401  (re-exported)
    preference_center_token, preference_center_url, unsubscribe_claims, unsubscribe_token, unsubscribe_url,
)

CHANNELS = ("email", "sms", "push", "in_app", "voice")  # the channels a person has preferences for
_CODE_ERRORS = {"COMMS_SUPPRESSED": errors.Suppressed, "COMMS_PREF_BLOCKED": errors.PrefBlocked,
                "COMMS_NO_CONSENT": errors.NoConsent}


# -- the decision ----------------------------------------------------------------------------------

def send_decision(*, recipient: Recipient | None, channel: str, category: str, address: str,
                  now: dt.datetime | None = None, tenant: Tenant | None = None) -> Decision:
    """May `address` on `channel` get a `category` message now? (allow / defer / block / digest)

    `recipient` may be None for a bare address (then `tenant` is required): only the suppression
    list, consent by address and the TCPA window apply to it.
    """
    tenant_id = recipient.tenant_id if recipient is not None else tenant.pk
    item = Item(key=0, tenant_id=tenant_id, recipient_id=recipient.pk if recipient else None, channel=channel,
                category=category, address=address, timezone=recipient.timezone if recipient else "")
    return decide_many([item], now=now or timezone.now())[0]


def raise_if_blocked(decision: Decision) -> None:
    """The API's early answer: a send that would certainly be blocked now is refused with its code."""
    if decision.verdict == BLOCK:
        raise _CODE_ERRORS.get(decision.code, errors.PrefBlocked)(decision.reason, details={"code": decision.code})


# -- suppression -----------------------------------------------------------------------------------

def suppression_add(*, tenant: Tenant, channel: str, address: str, reason: str, source: str,
                    expires_at: dt.datetime | None = None, detail: str = "", keep_copy: bool = True,
                    event_at: dt.datetime | None = None) -> Suppression:
    """Suppress `address` on `channel` for every recipient of the tenant.

    Adding an address twice keeps the heavier reason (a hard bounce after an unsubscribe must stop
    critical mail too) and the later expiry (None = forever). `keep_copy=False` stores no
    encrypted copy (erasure: the address must not survive even encrypted). `event_at` is when the
    provider says the cause happened, kept for the record; callers count `expires_at` from now
    (a late or replayed event must not produce an entry that is born expired).
    """
    if reason not in SuppressionReason.values:
        raise errors.ValidationFailed(f"Unknown suppression reason '{reason}'.",
                                      details={"allowed": SuppressionReason.values})
    now = timezone.now()
    h = address_hash(channel, address)
    with transaction.atomic():
        row = Suppression.objects.select_for_update().filter(tenant=tenant, channel=channel, address_hash=h).first()
        if row is None:
            row = Suppression(tenant=tenant, channel=channel, address_hash=h, reason=reason, source=source,
                              detail=detail, expires_at=expires_at, created_at=now, event_at=event_at)
        else:
            active = row.expires_at is None or row.expires_at > now
            if not active or REASON_RANK[reason] >= REASON_RANK[row.reason]:
                row.reason, row.source, row.detail = reason, source, detail or row.detail
                row.event_at = event_at  # the time of the cause now on record
            if not active:
                row.expires_at = expires_at
            elif row.expires_at is not None:
                row.expires_at = None if expires_at is None else max(row.expires_at, expires_at)
        if keep_copy:
            row.address = canonical_address(channel, address)
        else:
            row.address_encrypted = ""
        row.updated_at = now
        row.save()
    return row


_BULK_SUPPRESS_SQL = """
INSERT INTO preferences_suppression AS s (tenant_id, channel, address_hash, address_encrypted, reason, source,
                                          detail, created_at, updated_at, expires_at, event_at)
SELECT tenant_id, channel, address_hash, address_encrypted, reason, source, detail, %(now)s, %(now)s, NULL, event_at
  FROM json_to_recordset(%(rows)s::json)
       AS v(tenant_id uuid, channel text, address_hash text, address_encrypted text, reason text, source text,
            detail text, event_at timestamptz)
ON CONFLICT (tenant_id, channel, address_hash) DO UPDATE SET
  reason = CASE WHEN {take} THEN EXCLUDED.reason ELSE s.reason END,
  source = CASE WHEN {take} THEN EXCLUDED.source ELSE s.source END,
  detail = CASE WHEN {take} THEN COALESCE(NULLIF(EXCLUDED.detail, ''), s.detail) ELSE s.detail END,
  event_at = CASE WHEN {take} THEN EXCLUDED.event_at ELSE s.event_at END,
  expires_at = NULL, address_encrypted = EXCLUDED.address_encrypted, updated_at = EXCLUDED.updated_at
"""


def _rank_sql(column: str) -> str:
    return "CASE " + column + " " + " ".join(f"WHEN '{r}' THEN {n}" for r, n in REASON_RANK.items()) + " ELSE 0 END"


def suppressions_add_bulk(*, entries: Iterable[dict[str, Any]]) -> int:
    """``suppression_add`` for many permanent entries in one statement (a webhook batch's hard bounces
    and complaints). Each entry: tenant_id, channel, address, reason, source, detail, event_at.

    The same merge as one by one, in the given order: the heavier reason stays (an expired entry is
    replaced whatever its reason), and a permanent entry clears any expiry. Returns the rows written.
    """
    now = timezone.now()
    folded: dict[tuple, dict[str, Any]] = {}
    for entry in entries:
        if entry["reason"] not in SuppressionReason.values:
            raise errors.ValidationFailed(f"Unknown suppression reason '{entry['reason']}'.",
                                          details={"allowed": SuppressionReason.values})
        key = (str(entry["tenant_id"]), entry["channel"], address_hash(entry["channel"], entry["address"]))
        before = folded.get(key)
        if before is None or REASON_RANK[entry["reason"]] >= REASON_RANK[before["reason"]]:
            folded[key] = {**entry, "detail": entry.get("detail") or (before or {}).get("detail", "")}
    if not folded:
        return 0
    keys = sorted(folded)  # one lock order for every batch
    rows = [folded[k] for k in keys]
    take = (f"((s.expires_at IS NOT NULL AND s.expires_at <= %(now)s) "
            f"OR {_rank_sql('EXCLUDED.reason')} >= {_rank_sql('s.reason')})")
    with connection.cursor() as cursor:
        cursor.execute(_BULK_SUPPRESS_SQL.format(take=take), {"now": now, "rows": json.dumps([
            {"tenant_id": k[0], "channel": k[1], "address_hash": k[2],
             "address_encrypted": encrypt_json(canonical_address(r["channel"], r["address"])),
             "reason": r["reason"], "source": r.get("source", "")[:64], "detail": r.get("detail", ""),
             "event_at": r.get("event_at")} for k, r in zip(keys, rows)], default=str)})
    return len(rows)


def is_suppressed(*, tenant: Tenant, channel: str, address: str, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return Suppression.objects.filter(tenant=tenant, channel=channel, address_hash=address_hash(channel, address)).exclude(
        expires_at__lte=now).exists()


@transaction.atomic
def suppression_lift(*, tenant: Tenant, channel: str, address: str, consent_text: str, source: str,
                     recipient: Recipient | None = None, ip: str | None = None, user_agent: str = "",
                     actor: Any = None) -> bool:
    """Re-permission: remove a suppression, only with documented consent (recorded here; called for an
    actor, also audited as ``suppression.lift`` with the consent text as the reason).

    Hard bounces, invalid addresses and legal (erasure) entries are refused: consent does not
    make a dead mailbox deliverable, and an erased person cannot consent through us.
    """
    if not consent_text.strip():
        raise errors.ValidationFailed("Lifting a suppression needs the consent text the person agreed to.",
                                      details={"field": "consent_text"})
    row = Suppression.objects.select_for_update().filter(
        tenant=tenant, channel=channel, address_hash=address_hash(channel, address)).first()
    if row is None:
        return False
    if row.reason in (SuppressionReason.HARD_BOUNCE, SuppressionReason.INVALID, SuppressionReason.LEGAL):
        raise errors.ValidationFailed(f"A '{row.reason}' suppression cannot be lifted by consent.",
                                      details={"reason": row.reason})
    consent_record(tenant=tenant, recipient=recipient, address=address, channel=channel, action=ConsentAction.GRANTED,
                   source=source, ip=ip, user_agent=user_agent, consent_text=consent_text)
    if actor is not None:
        audit_record(actor=actor, action="suppression.lift", target=row, tenant=tenant, reason=consent_text,
                     diff={"reason": row.reason})
    row.delete()
    return True


# -- preferences -----------------------------------------------------------------------------------

def validate_timezone(name: str) -> str:
    if not name or name not in zoneinfo.available_timezones():
        raise errors.InvalidTimezone(f"Unknown time zone '{name}'.", details={"field": "timezone"})
    return name


def effective_preferences(*, recipient: Recipient) -> list[dict[str, Any]]:
    """Every visible category × channel with the value that applies (explicit or default)."""
    rows = {(p.channel, p.category): p for p in UserPreference.objects.filter(recipient=recipient)}
    out = []
    for cat in catalogue.categories(recipient.tenant_id):
        for channel in CHANNELS:
            p = rows.get((channel, cat.key))
            out.append({
                "category": cat.key, "channel": channel, "critical": cat.critical,
                "enabled": True if cat.critical else (p.enabled if p else cat.default_for(channel)),
                "frequency": p.frequency if p else Frequency.REALTIME, "explicit": p is not None,
                "updated_by": p.updated_by if p else "", "updated_at": p.updated_at if p else None,
            })
    return out


@transaction.atomic
def preferences_update(*, recipient: Recipient, changes: Iterable[dict[str, Any]], updated_by: str, source: str,
                       ip: str | None = None, user_agent: str | None = "", consent_text: str = "",
                       now: dt.datetime | None = None) -> int:
    """Apply [{category, channel, enabled, frequency?}]; each real change adds a consent record.

    Critical categories cannot be switched off (they are not consent-based: legal obligation or
    contract), so such a change is refused rather than silently ignored.
    """
    now = now or timezone.now()
    tenant = recipient.tenant
    current = {(p.channel, p.category): p for p in UserPreference.objects.select_for_update().filter(recipient=recipient)}
    changed = 0
    for change in changes:
        cat = catalogue.require(recipient.tenant_id, change["category"])
        channel = change["channel"]
        if channel not in CHANNELS:
            raise errors.UnknownChannel(f"Unknown channel '{channel}'.", details={"allowed": list(CHANNELS)})
        frequency = change.get("frequency") or None
        if frequency and frequency not in Frequency.values:
            raise errors.ValidationFailed(f"Unknown frequency '{frequency}'.", details={"allowed": Frequency.values})
        enabled = bool(change["enabled"])
        if cat.critical:
            if not enabled:
                raise errors.ValidationFailed(f"'{cat.key}' messages are critical and cannot be turned off.",
                                              details={"category": cat.key})
            continue
        row = current.get((channel, cat.key))
        before = (row.enabled, row.frequency) if row else (cat.default_for(channel), Frequency.REALTIME)
        after = (enabled, frequency or (row.frequency if row else Frequency.REALTIME))
        if row is not None and before == after:
            continue
        if row is None:
            row = UserPreference(tenant_id=recipient.tenant_id, recipient=recipient, channel=channel, category=cat.key,
                                 enabled=enabled)
            current[(channel, cat.key)] = row
        row.enabled, row.frequency = after
        row.updated_at, row.updated_by = now, updated_by
        row.save()
        # The person's own changes are evidence (with the text they saw); an admin or system switching
        # something *on* is not their consent and is not recorded as such (opt-outs always are).
        if updated_by == UpdatedBy.USER or not enabled:
            consent_record(tenant=tenant, recipient=recipient, channel=channel, category=cat.key,
                           action=ConsentAction.GRANTED if enabled else ConsentAction.WITHDRAWN, source=source,
                           ip=ip, user_agent=user_agent, at=now,
                           consent_text=consent_text or f"{cat.name} by {channel}: {'on' if enabled else 'off'}"
                                                        f" ({after[1]})")
        changed += 1
    return changed


@transaction.atomic
def quiet_hours_set(*, recipient: Recipient, enabled: bool = True, start: dt.time | None = None,
                    end: dt.time | None = None, timezone_name: str = "", category: str = "",
                    channels: list[str] | None = None) -> QuietHours:
    """The recipient's quiet window (category "" = general). start == end is refused: ambiguous."""
    start = start or dt.time(21, 0)
    end = end or dt.time(8, 0)
    if start == end:
        raise errors.InvalidQuietHours(details={"start": start.isoformat(), "end": end.isoformat()})
    if category:
        catalogue.require(recipient.tenant_id, category)
    if timezone_name:
        validate_timezone(timezone_name)
    for channel in channels or ():
        if channel not in CHANNELS:
            raise errors.UnknownChannel(f"Unknown channel '{channel}'.", details={"allowed": list(CHANNELS)})
    row, _ = QuietHours.objects.update_or_create(
        recipient=recipient, category=category,
        defaults={"tenant_id": recipient.tenant_id, "enabled": enabled, "start": start, "end": end,
                  "timezone": timezone_name, "channels": list(channels or []), "updated_at": timezone.now()})
    return row


@transaction.atomic
def preferences_change(*, recipient: Recipient, data: dict[str, Any]) -> None:
    """One API PUT: preference changes and quiet hours together, all or nothing."""
    preferences_update(recipient=recipient, changes=data.get("preferences") or [], updated_by=data["updated_by"],
                       source=data.get("source") or "api", ip=data.get("ip"), user_agent=data.get("user_agent"),
                       consent_text=data.get("consent_text") or "")
    for window in data.get("quiet_hours") or []:
        quiet_hours_set(recipient=recipient, enabled=window["enabled"], start=window["start"], end=window["end"],
                        timezone_name=window["timezone"], category=window["category"], channels=window["channels"])


# -- unsubscribe -----------------------------------------------------------------------------------

@transaction.atomic
def unsubscribe(*, recipient: Recipient, category: str | None = None, channel: str | None = None, source: str,
                ip: str | None = None, user_agent: str | None = None, source_ref: str = "",
                ref_once_per_grant: bool = False) -> int:
    """Opt `recipient` out of `category` (None: every non-critical category) on `channel` (None: all).

    Writes the preference rows, closes matching list subscriptions and appends one consent
    withdrawal (none when `source_ref` was already recorded: see preferences.consent). Critical
    categories are left alone (they are not opt-out-able).
    """
    if category:
        cats = [catalogue.require(recipient.tenant_id, category)]
    else:
        cats = [c for c in catalogue.categories(recipient.tenant_id) if not c.critical]
    channels = [channel] if channel else list(CHANNELS)
    changes = [{"category": c.key, "channel": ch, "enabled": False} for c in cats if not c.critical for ch in channels]
    now = timezone.now()
    n = 0
    for change in changes:
        n += UserPreference.objects.update_or_create(
            recipient=recipient, channel=change["channel"], category=change["category"],
            defaults={"tenant_id": recipient.tenant_id, "enabled": False, "updated_at": now,
                      "updated_by": UpdatedBy.USER})[0] is not None
    subs = ChannelSubscription.objects.filter(recipient=recipient, list_id__in=[c.key for c in cats])
    if channel:
        subs = subs.filter(channel=channel)
    subs.exclude(status=SubscriptionStatus.UNSUBSCRIBED).update(status=SubscriptionStatus.UNSUBSCRIBED,
                                                                unsubscribed_at=now)
    consent_record(tenant=recipient.tenant, recipient=recipient, channel=channel or "",
                   category=category or "", action=ConsentAction.WITHDRAWN, source=source, ip=ip,
                   user_agent=user_agent, at=now, source_ref=source_ref, ref_once_per_grant=ref_once_per_grant,
                   consent_text=f"Unsubscribe from {category or 'all non-essential messages'}"
                                f" on {channel or 'every channel'}")
    return n


def unsubscribe_by_token(*, token: str, source: str, ip: str | None = None,
                         user_agent: str | None = None) -> dict[str, Any]:
    """One-click (RFC 8058) or confirmed unsubscribe from a link. A bare address (no directory
    entry) is put on the suppression list instead, since it has no preferences to change; its
    withdrawal is linked to every recipient holding that address.

    Keyed by the token: mailbox providers may POST the same one-click request more than once, and
    a repeat writes no second ledger row (unless the person re-subscribed in between).
    """
    claims = unsubscribe_claims(token)
    tenant = Tenant.objects.filter(pk=claims.tenant_id).first()
    if tenant is None:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "unknown_tenant"})
    if claims.recipient_id:
        recipient = Recipient.objects.filter(tenant=tenant, pk=claims.recipient_id).first()
        if recipient is None:
            raise errors.InvalidToken("This link is not valid.", details={"reason": "unknown_recipient"})
        cat = catalogue.category(tenant.pk, claims.category)
        unsubscribe(recipient=recipient, category=cat.key if cat.key and not cat.critical else None,
                    channel=claims.channel, source=source, ip=ip, user_agent=user_agent, source_ref=token_ref(token),
                    ref_once_per_grant=True)
        return {"recipient": recipient, "category": cat.key}
    # The message table is delivery's, above this app: its selector is named in settings, not imported.
    found = import_string(settings.COMMS_MESSAGE_ADDRESS_SELECTOR)(tenant_id=tenant.pk, message_id=claims.message_id)
    if found is None:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "unknown_message"})
    channel, address = found
    with transaction.atomic():
        suppression_add(tenant=tenant, channel=channel, address=address,
                        reason=SuppressionReason.UNSUBSCRIBE, source=source)
        consent_record(tenant=tenant, address=address, channel=channel,
                       category=claims.category, action=ConsentAction.WITHDRAWN, source=source, ip=ip,
                       user_agent=user_agent, consent_text="Unsubscribe link", source_ref=token_ref(token),
                       ref_once_per_grant=True)
    return {"recipient": None, "category": claims.category}


# Re-exported use cases that live in their own modules (kept small).
from preferences.subscriptions import (  # noqa: E402,F401
    double_opt_in_sweep, subscription_confirm, subscription_request,
)
from preferences.sms import sms_keyword_handle  # noqa: E402,F401
from preferences.erasure import recipient_erase  # noqa: E402,F401
from preferences.imports import preferences_import  # noqa: E402,F401
