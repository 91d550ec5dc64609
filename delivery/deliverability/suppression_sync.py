"""Suppression sync with the ESPs (seed 000, unsubscribe workflow step 6: "sync to providers").

Both ways, per ESP in COMMS_SUPPRESSION_SYNC_ESPS, on a beat schedule:
* push: our permanent email suppressions (unsubscribe, complaint, hard bounce, invalid) changed since
  the ESP's watermark. The watermark moves only after the ESP accepted the batch, so an API error or
  timeout leaves it where it was and the next run sends the same rows again (the ESP APIs are
  idempotent adds): nothing is lost. Temporary entries (soft-bounce pauses) are not pushed: an ESP
  list has no expiry and would keep them forever.
* import: the ESP's lists; an entry becomes a suppression through ``suppression_add`` (the heavier
  reason wins: most restrictive) and, when it changed anything, a withdrawal in the consent ledger
  (append-only) whose source names the ESP. An entry we already hold at least as strictly changes nothing.
A failed run records its typed error on the ESP's SuppressionSyncState and backs off (1, 5, 30 min, 2 h).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.models import Tenant
from comms.services import tenant_get_default
from delivery.deliverability.esp_suppression import Entry, esp_client
from delivery.deliverability.models_probes import SuppressionSyncState
from preferences.consent import consent_record
from preferences.hashing import address_hash
from preferences.models import REASON_RANK, ConsentAction, Suppression
from preferences.services import suppression_add

log = logging.getLogger(__name__)
PUSHED_REASONS = ("unsubscribe", "complaint", "hard_bounce", "invalid")
BATCH = 500
SETTLE = timedelta(seconds=5)  # rows younger than this may still commit behind an older timestamp
BACKOFF = (60, 300, 1800, 7200)


def _push(state: SuppressionSyncState, client, *, now: datetime) -> int:
    pushed = 0
    while True:
        rows = Suppression.objects.filter(tenant_id=state.tenant_id, channel="email", reason__in=PUSHED_REASONS,
                                          expires_at__isnull=True, updated_at__lt=now - SETTLE)
        if state.pushed_until:
            rows = rows.filter(updated_at__gt=state.pushed_until)
        rows = list(rows.order_by("updated_at", "id")[:BATCH])
        if not rows:
            return pushed
        # An entry that came from this ESP is not sent back to it; an erased address has no copy left.
        entries = [Entry(row.address, row.reason, row.event_at, row.detail) for row in rows
                   if row.address_encrypted and row.source != f"esp:{state.esp}"]
        if entries:
            client.push(entries)
        state.pushed_until = rows[-1].updated_at
        state.pushed_count += len(entries)
        state.save(update_fields=["pushed_until", "pushed_count"])  # the watermark after each accepted batch
        pushed += len(entries)
        if len(rows) < BATCH:
            return pushed


def _apply(tenant: Tenant, esp: str, entry: Entry, *, now: datetime) -> bool:
    """Import one ESP entry; True when it changed our state (and so wrote a ledger row)."""
    h = address_hash("email", entry.address)
    with transaction.atomic():
        held = Suppression.objects.select_for_update().filter(tenant=tenant, channel="email", address_hash=h).first()
        active = held is not None and (held.expires_at is None or held.expires_at > now)
        if active and held.expires_at is None and REASON_RANK[held.reason] >= REASON_RANK[entry.reason]:
            return False  # we already hold it at least as strictly
        suppression_add(tenant=tenant, channel="email", address=entry.address, reason=entry.reason,
                        source=f"esp:{esp}", detail=entry.detail[:500], event_at=entry.at)
        consent_record(tenant=tenant, address=entry.address, channel="email", action=ConsentAction.WITHDRAWN,
                       source=f"esp_sync:{esp}", at=now, source_ref=f"esp-sync:{esp}:{entry.reason}:{h[:40]}",
                       consent_text=f"{entry.reason} on {esp}'s suppression list (imported)")
    return True


def suppression_sync_esp(*, tenant: Tenant, esp: str, now: datetime | None = None,
                         force: bool = False) -> dict[str, Any]:
    """Push then import for one ESP; never raises for an ESP fault (it is recorded and retried later)."""
    now = now or timezone.now()
    state, _ = SuppressionSyncState.objects.get_or_create(tenant=tenant, esp=esp, defaults={"next_attempt_at": now})
    if not force and state.next_attempt_at > now:
        return {"esp": esp, "skipped": "backing off", "next_attempt_at": state.next_attempt_at.isoformat()}
    result: dict[str, Any] = {"esp": esp, "pushed": 0, "imported": 0, "error": None}
    client = None
    try:
        client = esp_client(esp)
        result["pushed"] = _push(state, client, now=now)
        seen = 0
        for entry in client.pull():
            seen += 1
            result["imported"] += _apply(tenant, esp, entry, now=now)
        result["listed"] = seen
        state.imported_at, state.last_ok_at = now, now
        state.imported_count += result["imported"]
        state.failures, state.last_error_code, state.last_error, state.next_attempt_at = 0, "", "", now
    except errors.CommsError as exc:
        delay = BACKOFF[min(state.failures, len(BACKOFF) - 1)]
        state.failures += 1
        state.last_error_code, state.last_error = exc.code, exc.message[:1000]
        state.next_attempt_at = now + timedelta(seconds=delay)
        result["error"] = exc.as_dict()
        log.warning("suppression sync with %s failed (%s): %s; retrying in %ss", esp, exc.code, exc.message, delay)
    finally:
        if client is not None:
            client.close()
    state.save()
    return result


def suppression_sync_all(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """The beat entry: every configured ESP for the default tenant (whose account the settings keys are)."""
    tenant = tenant_get_default()
    return [suppression_sync_esp(tenant=tenant, esp=esp, now=now) for esp in settings.COMMS_SUPPRESSION_SYNC_ESPS]
