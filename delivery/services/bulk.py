"""Bulk fan-out: up to 100,000 recipients in one call, written with PostgreSQL COPY.

Shared content is stored once on a MessageBatch; each recipient becomes one lightweight Message
row (address, variables) streamed with COPY in the request's transaction. Workers are woken on
commit like any other send.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from uuid_utils import uuid7

from comms import errors
from comms.addresses import normalise_address
from comms.enums import Channel, Status
from comms.models import Device, Recipient, Tenant
from delivery import wakeup
from delivery.deliverability import pools
from delivery.models import Message, MessageBatch, WebhookEndpoint
from delivery.services.enqueue import SendSpec, check_sendable, initial_state, recipient_address_for
from delivery.services.webhooks import unverified
from templates_app import services as templates

MAX_REPORTED_ERRORS = 100

# Every column of the table, so a new model field cannot silently be left out of the COPY.
_MESSAGE_COLUMNS = tuple(f.column for f in Message._meta.concrete_fields)


@dataclass
class BulkResult:
    batch: MessageBatch
    created: bool
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    recipient_pk: Any
    address: str
    variables: str
    metadata: str
    locale: str = ""


def _resolve_rows(tenant: Tenant, channel: str, recipients: list[dict], *, validator=None,
                  locale: str = "") -> tuple[list[_Row], list[dict]]:
    """Validate every entry (address, and variables against the template's schema when there is one)."""
    wanted = {r["recipient_id"] for r in recipients if r.get("recipient_id")}
    directory = {
        r.external_id: r for r in Recipient.objects.filter(tenant=tenant, external_id__in=wanted)
    } if wanted else {}
    rows: list[_Row] = []
    problems: list[dict] = []
    with_devices = set(Device.objects.filter(
        tenant=tenant, recipient__in=directory.values(), disabled_at__isnull=True).values_list(
        "recipient_id", flat=True)) if channel == Channel.PUSH and directory else set()
    endpoints = set(WebhookEndpoint.objects.filter(tenant=tenant, disabled_at__isnull=True).values_list(
        "url", flat=True)) if channel == Channel.WEBHOOK else None
    for index, entry in enumerate(recipients):
        try:
            recipient = None
            if entry.get("recipient_id"):
                recipient = directory.get(entry["recipient_id"])
                if recipient is None:
                    raise errors.RecipientNotFound(f"No recipient '{entry['recipient_id']}'.")
            if entry.get("to"):
                address = normalise_address(channel, entry["to"])
            elif recipient is not None:
                address = recipient_address_for(channel, recipient, has_device=recipient.pk in with_devices
                                                if channel == Channel.PUSH else None)
            else:
                raise errors.InvalidAddress("Each recipient needs 'to' or 'recipient_id'.")
            if endpoints is not None and address not in endpoints:
                raise unverified(address)
            if validator is not None:
                for problem in templates.variable_errors(validator, entry.get("variables") or {}):
                    raise problem
        except errors.CommsError as exc:
            problems.append({"index": index, "code": exc.code, "message": exc.message})
            continue
        rows.append(_Row(
            recipient_pk=recipient.pk if recipient else None, address=address,
            variables=json.dumps(entry["variables"]) if entry.get("variables") else "{}",
            metadata=json.dumps(entry["metadata"]) if entry.get("metadata") else "{}",
            locale=locale or (recipient.locale if recipient is not None else ""),
        ))
    return rows, problems


def message_bulk_enqueue(*, tenant: Tenant, spec: SendSpec, recipients: list[dict],
                         idempotency_key: str | None = None, skip_invalid: bool = False,
                         now: datetime | None = None) -> BulkResult:
    """Fan one content out to many recipients. Nothing is written unless the call is accepted.

    With ``skip_invalid`` the valid recipients are accepted and the invalid ones reported;
    without it, any invalid recipient rejects the whole call.
    """
    now = now or timezone.now()
    limit = settings.COMMS_BULK_MAX_RECIPIENTS
    if len(recipients) > limit:
        raise errors.BulkTooLarge(f"{len(recipients)} recipients; at most {limit} per call.",
                                  details={"count": len(recipients), "limit": limit})
    if not recipients:
        raise errors.ValidationFailed("recipients must not be empty.", details={"field": "recipients"})
    fingerprint = _bulk_fingerprint(spec, recipients, skip_invalid)
    if idempotency_key:
        existing = MessageBatch.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
    check_sendable(tenant=tenant, spec=spec, now=now)
    version = validator = None
    if spec.template_key:  # pinned now: every row renders from the version that was live at enqueue
        version = templates.active_version(tenant=tenant, template_key=spec.template_key)
        if spec.channel not in version.template.channels:
            raise errors.TemplateChannel(f"Template '{spec.template_key}' has no {spec.channel} content.")
        validator = templates.version_validator(version)
    rows, problems = _resolve_rows(tenant, spec.channel, recipients, validator=validator, locale=spec.locale)
    if problems and not skip_invalid:
        first = problems[0]
        err = errors.CommsError(
            f"{len(problems)} of {len(recipients)} recipients are invalid (first at index {first['index']}: "
            f"{first['message']}); nothing was queued. Fix them or pass skip_invalid=true.",
            details={"invalid": len(problems), "errors": problems[:MAX_REPORTED_ERRORS]},
        )
        err.code, err.status = first["code"], errors.status_for(first["code"])
        raise err
    if not rows:
        raise errors.InvalidAddress("No valid recipient in the call.",
                                    details={"invalid": len(problems), "errors": problems[:MAX_REPORTED_ERRORS]})
    status, due = initial_state(spec, now)
    try:
        with transaction.atomic():
            batch = MessageBatch.objects.create(
                tenant=tenant, channel=spec.channel, priority=spec.priority, category=spec.category,
                template_key=spec.template_key, template_version=version, subject=spec.subject, body=spec.body, body_html=spec.body_html,
                metadata=spec.metadata, idempotency_key=idempotency_key or None, request_hash=fingerprint,
                requested=len(recipients), accepted=len(rows), rejected=len(problems),
                scheduled_for=spec.scheduled_for, created_at=now,
            )
            _copy_rows(batch, spec, rows, status=status, due=due, now=now)
            if status == Status.QUEUED:
                wakeup.wake_on_commit({spec.priority})
    except IntegrityError:
        if not idempotency_key:
            raise
        return _replay(MessageBatch.objects.get(tenant=tenant, idempotency_key=idempotency_key), fingerprint)
    return BulkResult(batch=batch, created=True, errors=problems[:MAX_REPORTED_ERRORS])


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_rows(batch: MessageBatch, spec: SendSpec, rows: list[_Row], *, status: str, due: datetime,
               now: datetime) -> None:
    """Stream the rows with COPY in text format, formatting lines ourselves.

    Only address, recipient, id and per-recipient JSON vary; everything else is one pre-escaped
    tail shared by every line, which is what makes 100,000 rows a sub-second write.
    """
    null = "\\N"
    pool = pools.pool_resolve(tenant_id=batch.tenant_id, channel=spec.channel, category=spec.category,
                              override=spec.pool)
    head_cols = ("id", "recipient_id", "recipient_address", "variables", "metadata", "locale")
    tail_cols = [c for c in _MESSAGE_COLUMNS if c not in head_cols]
    constants = {
        "tenant_id": str(batch.tenant_id), "batch_id": str(batch.id), "channel": spec.channel,
        "priority": str(int(spec.priority)), "category": spec.category, "status": status,
        "template_key": _copy_text(spec.template_key), "subject": "", "body": "", "body_html": "",
        "template_version_id": str(batch.template_version_id) if batch.template_version_id else null,
        "variant": "", "artifact": "", "fallback_channels": "{}", "fallback_of_id": null, "payload": "{}",
        "idempotency_key": null, "request_hash": "", "attempt_count": "0", "next_attempt_at": due.isoformat(),
        "scheduled_for": spec.scheduled_for.isoformat() if spec.scheduled_for else null, "lease_owner": null,
        "lease_expires_at": null, "provider": "", "provider_ref": "", "sent_at": null, "delivered_at": null,
        "failed_at": null, "failure_code": "", "failure_reason": "", "pool": _copy_text(pool),
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    tail = "\t".join(constants[c] for c in tail_cols) + "\n"
    columns = ", ".join((*head_cols, *tail_cols))
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY delivery_message ({columns}) FROM STDIN") as copy:
            lines = []
            for row in rows:
                lines.append(
                    f"{uuid7()}\t{row.recipient_pk or null}\t{_copy_text(row.address)}\t"
                    f"{_copy_text(row.variables)}\t{_copy_text(row.metadata)}\t{_copy_text(row.locale)}\t{tail}"
                )
                if len(lines) >= 5000:
                    copy.write("".join(lines))
                    lines.clear()
            if lines:
                copy.write("".join(lines))


def _bulk_fingerprint(spec: SendSpec, recipients: list[dict], skip_invalid: bool) -> str:
    digest = hashlib.sha256(spec.fingerprint().encode())
    digest.update(json.dumps(recipients, sort_keys=True, default=str).encode())
    digest.update(b"1" if skip_invalid else b"0")
    return digest.hexdigest()


def _replay(existing: MessageBatch, fingerprint: str) -> BulkResult:
    if existing.request_hash != fingerprint:
        raise errors.IdempotencyConflict(details={"batch_id": str(existing.id)})
    return BulkResult(batch=existing, created=False)


# Rows already resolved by the caller from the directory (campaign fan-out): address, recipient pk,
# locale and the per-row variables JSON. No per-row validation: directory addresses are normalised
# when written, and the caller validates shared variables once against the template.
BulkRow = _Row


def message_bulk_enqueue_rows(*, tenant: Tenant, spec: SendSpec, rows: list[_Row], idempotency_key: str,
                              now: datetime | None = None) -> BulkResult:
    """One COPY of pre-resolved rows as one MessageBatch; a replayed key returns the first batch."""
    now = now or timezone.now()
    existing = MessageBatch.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
    if existing is not None:
        return BulkResult(batch=existing, created=False)
    if not rows:
        raise errors.ValidationFailed("rows must not be empty.")
    check_sendable(tenant=tenant, spec=spec, now=now)
    version = None
    if spec.template_key:
        version = templates.active_version(tenant=tenant, template_key=spec.template_key)
        if spec.channel not in version.template.channels:
            raise errors.TemplateChannel(f"Template '{spec.template_key}' has no {spec.channel} content.")
    status, due = initial_state(spec, now)
    with transaction.atomic():
        batch = MessageBatch.objects.create(
            tenant=tenant, channel=spec.channel, priority=spec.priority, category=spec.category,
            template_key=spec.template_key, template_version=version, metadata=spec.metadata,
            idempotency_key=idempotency_key, request_hash=spec.fingerprint(), requested=len(rows),
            accepted=len(rows), rejected=0, scheduled_for=spec.scheduled_for, created_at=now,
        )
        _copy_rows(batch, spec, rows, status=status, due=due, now=now)
        if status == Status.QUEUED:
            wakeup.wake_on_commit({spec.priority})
    return BulkResult(batch=batch, created=True)
