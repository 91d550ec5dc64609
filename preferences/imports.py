"""CRM import of preferences (EC-COM-018): "most restrictive wins".

An external system may switch things *off* or slow them down, never back on: a person's opt-out
outranks a CRM's stale "subscribed" flag. Every bad row is reported (line, reason); the good rows
are applied in one transaction, or nothing at all with ``atomic=True`` when any row is bad.

CSV columns: ``external_id,channel,category,enabled[,frequency]`` (header required).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.models import Recipient, Tenant
from preferences import catalogue
from preferences.models import ConsentAction, Frequency, UpdatedBy, UserPreference

# Higher is more restrictive.
FREQUENCY_RANK = {Frequency.REALTIME: 0, Frequency.DAILY: 1, Frequency.WEEKLY: 2, Frequency.NEVER: 3}
TRUE, FALSE = {"1", "true", "yes", "y", "on", "subscribed"}, {"0", "false", "no", "n", "off", "unsubscribed"}
CHANNELS = ("email", "sms", "push", "in_app", "voice")
MAX_ROWS = 200_000


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "applied": self.applied, "unchanged": self.unchanged,
                "bad_rows": len(self.errors), "errors": self.errors}


def _parse(tenant: Tenant, lines: Iterable[dict], report: ImportReport) -> list[tuple[int, dict]]:
    good = []
    for number, row in lines:
        report.rows += 1
        try:
            if None in row or any(v is None for v in row.values()):
                raise ValueError("wrong number of columns")
            external_id = (row.get("external_id") or "").strip()
            if not external_id:
                raise ValueError("external_id is empty")
            channel = (row.get("channel") or "").strip().lower()
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel '{channel}'")
            cat = catalogue.category(tenant.pk, (row.get("category") or "").strip())
            if cat is catalogue.UNKNOWN:
                raise ValueError(f"unknown category '{(row.get('category') or '').strip()}'")
            raw = (row.get("enabled") or "").strip().lower()
            if raw not in TRUE | FALSE:
                raise ValueError(f"enabled must be true/false, got '{raw}'")
            frequency = (row.get("frequency") or "").strip().lower() or None
            if frequency and frequency not in Frequency.values:
                raise ValueError(f"unknown frequency '{frequency}'")
            if cat.critical:
                raise ValueError(f"'{cat.key}' is critical and not controlled by preferences")
            good.append((number, {"external_id": external_id, "channel": channel, "category": cat.key,
                                  "enabled": raw in TRUE, "frequency": frequency}))
        except ValueError as exc:
            report.errors.append({"line": number, "error": str(exc)})
    return good


def preferences_import(*, tenant: Tenant, csv_text: str, atomic: bool = False, source: str = "crm_import") -> ImportReport:
    """Import preference rows from CSV text; see the module docstring for the rules."""
    from preferences.services import consent_record

    report = ImportReport()
    reader = csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff")))
    required = {"external_id", "channel", "category", "enabled"}
    if not reader.fieldnames or not required <= {f.strip() for f in reader.fieldnames}:
        raise errors.ValidationFailed(f"The CSV needs a header with {', '.join(sorted(required))}.",
                                      details={"header": reader.fieldnames or []})
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    lines = ((reader.line_num, row) for row in reader)
    good = _parse(tenant, lines, report)
    if report.rows > MAX_ROWS:
        raise errors.ValidationFailed(f"At most {MAX_ROWS} rows per import.")
    recipients = {r.external_id: r for r in Recipient.objects.filter(
        tenant=tenant, external_id__in={g["external_id"] for _, g in good})}
    resolved = []
    for number, g in good:
        if g["external_id"] not in recipients:
            report.errors.append({"line": number, "error": f"unknown recipient '{g['external_id']}'"})
        else:
            resolved.append((number, recipients[g["external_id"]], g))
    report.errors.sort(key=lambda e: e["line"])
    if atomic and report.errors:
        raise errors.ImportFailed(details=report.as_dict())
    now = timezone.now()
    with transaction.atomic():
        existing = {(p.recipient_id, p.channel, p.category): p for p in UserPreference.objects.select_for_update().filter(
            recipient__in=[r for _, r, _ in resolved])}
        for number, recipient, g in resolved:
            cat = catalogue.category(tenant.pk, g["category"])
            row = existing.get((recipient.pk, g["channel"], g["category"]))
            cur_enabled = row.enabled if row else cat.default_for(g["channel"])
            cur_freq = row.frequency if row else Frequency.REALTIME
            enabled = cur_enabled and g["enabled"]  # off wins
            frequency = max(cur_freq, g["frequency"] or cur_freq, key=lambda f: FREQUENCY_RANK[f])
            if row is not None and (enabled, frequency) == (cur_enabled, cur_freq):
                report.unchanged += 1
                continue
            if row is None and (enabled, frequency) == (cur_enabled, cur_freq):
                report.unchanged += 1  # the default already says so; no row needed
                continue
            if row is None:
                row = existing[(recipient.pk, g["channel"], g["category"])] = UserPreference(
                    tenant=tenant, recipient=recipient, channel=g["channel"], category=g["category"], enabled=enabled)
            row.enabled, row.frequency, row.updated_at, row.updated_by = enabled, frequency, now, UpdatedBy.IMPORT
            row.save()
            if enabled != cur_enabled:
                consent_record(tenant=tenant, recipient=recipient, channel=g["channel"], category=g["category"],
                               action=ConsentAction.WITHDRAWN, source=source, at=now,
                               consent_text=f"CRM import line {number}: opted out")
            report.applied += 1
    return report
