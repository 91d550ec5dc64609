"""Accepting messages: validate, resolve the recipient, write the row, wake a worker on commit; and
taking one back (cancel, requeue). Messages that continue another (fallback, follow-ups, shares) are
in follow_ups.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection, models, transaction
from django.utils import timezone

from comms import errors
from comms.addresses import normalise_address, validate_content
from comms.audit import audit_record
from comms.netsafe import resolve_safe
from comms.enums import CANCELLABLE, Channel, LogEvent, Status
from comms.models import Recipient, Tenant
from delivery import routing, wakeup
from delivery.costs.services import sms_category_check
from delivery.deliverability import pools
from delivery.models import DeliveryLog, Message
from delivery.services import screening
from delivery.services.webhooks import endpoint_active
from templates_app import rollout
from templates_app import services as templates

# A scheduled_for this close to now counts as "now": client and server clocks differ a little.
CLOCK_SKEW = timedelta(seconds=5)


@dataclass(frozen=True)
class SendSpec:
    """A validated send request, independent of HTTP."""

    channel: str
    to: str = ""
    recipient_id: str = ""
    subject: str = ""
    body: str = ""
    body_html: str = ""
    template_key: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    locale: str = ""
    priority: int = 2
    category: str = "transactional"
    scheduled_for: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    fallback: tuple[str, ...] = ()  # channels to try next, in order (needs a directory recipient)
    pool: str = ""  # an admin's explicit pool (delivery.deliverability.pools); empty: the category's

    def fingerprint(self) -> str:
        """Stable hash of the request, to tell an idempotent replay from a conflicting reuse."""
        # The same JSON as json.dumps(asdict(self)) (stored hashes stay comparable) without asdict's deep copy.
        values = {name: getattr(self, name) for name in _SPEC_FIELDS}
        if not values["pool"]:  # absent unless chosen, so hashes stored before pools existed still compare
            del values["pool"]
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


_SPEC_FIELDS = tuple(f.name for f in fields(SendSpec))


def recipient_address_for(channel: str, recipient: Recipient, *, has_device: bool | None = None) -> str:
    """The recipient's address on `channel`; `has_device` saves bulk calls a query per push recipient."""
    if channel == Channel.EMAIL:
        address = recipient.email
    elif channel in (Channel.SMS, Channel.VOICE):
        address = recipient.phone
    elif channel == Channel.IN_APP:
        address = recipient.external_id
    elif channel == Channel.PUSH:
        # Push fans out to the recipient's devices at send time; the address names the recipient.
        if has_device is None:
            has_device = recipient.devices.filter(disabled_at__isnull=True).exists()
        if not has_device:
            raise errors.NoDevices(f"Recipient '{recipient.external_id}' has no active push device.",
                                   details={"recipient_id": recipient.external_id, "channel": channel})
        return recipient.external_id
    else:
        address = ""
    if not address:
        raise errors.InvalidAddress(
            f"Recipient '{recipient.external_id}' has no address for channel '{channel}'.",
            details={"recipient_id": recipient.external_id, "channel": channel},
        )
    return normalise_address(channel, address)


def _directory(tenant: Tenant, external_id: str, known: Recipient | None) -> Recipient | None:
    """The directory row; a caller that already holds it (the router) passes it and saves the query."""
    if known is not None and known.external_id == external_id and known.tenant_id == tenant.pk:
        return known
    return Recipient.objects.filter(tenant=tenant, external_id=external_id).first()


def _resolve(tenant: Tenant, spec: SendSpec, known: Recipient | None = None) -> tuple[Recipient | None, str]:
    if spec.channel == Channel.IN_APP and not spec.recipient_id:
        spec = replace(spec, recipient_id=spec.to.strip(), to="")  # an inbox belongs to a directory recipient
    if spec.recipient_id:
        recipient = _directory(tenant, spec.recipient_id, known)
        if recipient is None:
            raise errors.RecipientNotFound(f"No recipient '{spec.recipient_id}'.",
                                           details={"recipient_id": spec.recipient_id})
        address = normalise_address(spec.channel, spec.to) if spec.to else recipient_address_for(spec.channel, recipient)
        return recipient, address
    return None, normalise_address(spec.channel, spec.to)


def check_sendable(*, tenant: Tenant, spec: SendSpec, now: datetime) -> None:
    """Checks shared by single and bulk sends: channel served, template known, content, schedule."""
    if spec.channel not in Channel.values:
        raise errors.UnknownChannel(f"Unknown channel '{spec.channel}'.", details={"allowed": Channel.values})
    sms_category_check(tenant_id=tenant.id, channel=spec.channel, category=spec.category)  # delivery.costs
    if not routing.channel_available(tenant_id=tenant.id, channel=spec.channel, category=spec.category):
        raise errors.ChannelUnavailable(f"No provider is configured for channel '{spec.channel}'.",
                                        details={"channel": spec.channel})
    if spec.template_key:
        if spec.subject or spec.body or spec.body_html:
            raise errors.ValidationFailed("Give either a template or inline content, not both.",
                                          details={"field": "template"})
    else:
        validate_content(spec.channel, subject=spec.subject, body=spec.body, body_html=spec.body_html)
    if spec.scheduled_for is not None and spec.scheduled_for < now - CLOCK_SKEW:
        raise errors.ScheduleInPast(details={"scheduled_for": spec.scheduled_for.isoformat(), "now": now.isoformat()})


def _render_template(message: Message, spec: SendSpec, recipient: Recipient | None, version=None) -> None:
    """Render the active version now (a send is never half-rendered) and keep an immutable copy."""
    if version is None or version.template.template_key != spec.template_key:
        version = templates.active_version(tenant=message.tenant, template_key=spec.template_key)
    render = rollout.render_for_recipient(  # a staged rollout may give this recipient the new version
        version=version, channel=spec.channel, variables=spec.variables,
        locale=spec.locale or (recipient.locale if recipient else ""),
        timezone=recipient.timezone if recipient else "UTC",
        recipient_key=recipient.external_id if recipient else message.recipient_address,
    )
    content = render.content
    validate_content(spec.channel, subject=content.subject, body=content.body, body_html=content.body_html,
                     data=content.data)
    message.subject, message.body, message.body_html = content.subject, content.body, content.body_html
    message.payload = content.data
    message.template_version, message.variant, message.locale = render.version, render.variant, render.locale
    message.artifact = templates.artifact_store(tenant_id=message.tenant_id, message_id=message.id, render=render,
                                                channel=spec.channel)


def initial_state(spec: SendSpec, now: datetime) -> tuple[str, datetime]:
    if spec.scheduled_for is not None and spec.scheduled_for > now:
        return Status.SCHEDULED, spec.scheduled_for
    return Status.QUEUED, now


def _replay(existing: Message, fingerprint: str) -> tuple[Message, bool]:
    if existing.request_hash != fingerprint:
        raise errors.IdempotencyConflict(details={"message_id": str(existing.id)})
    return existing, False


@lru_cache(maxsize=1)
def _insert_plan() -> tuple[str, list[tuple[Any, tuple[type, ...]]]]:
    """The INSERT and, per column, the value types Django's own preparation would pass through
    unchanged (so they skip it: it was a fifth of the cost of the insert). JSON, arrays and any
    other type still go through ``get_db_prep_save``."""
    fields = Message._meta.concrete_fields
    sql = (
        f"INSERT INTO delivery_message ({', '.join(f.column for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id"
    )
    plan = []
    for field in fields:
        target = field.target_field if field.is_relation else field
        if isinstance(target, (models.JSONField, ArrayField)):
            plain: tuple[type, ...] = ()
        elif isinstance(target, (models.CharField, models.TextField)):
            plain = (str,)
        elif isinstance(target, models.UUIDField):
            plain = (uuid.UUID,)
        elif isinstance(target, models.DateTimeField):
            plain = (datetime,)  # aware only (a naive one gets Django's warning and conversion)
        else:  # e.g. integers: Django wraps them (psycopg's Int2) for server-side binding
            plain = ()
        plan.append((field, plain))
    return sql, plan


def _insert(message: Message) -> bool:
    """Insert `message`; False when its idempotency key already exists (one round trip).

    The creation itself is not written to DeliveryLog: it is derived from the row (created_at,
    scheduled_for), which halves the writes of a bulk fan-out. The log holds what happens after.
    """
    sql, plan = _insert_plan()
    params = []
    for field, plain in plan:
        value = getattr(message, field.attname)
        params.append(value if value is None and plain or type(value) in plain and not (
            type(value) is datetime and value.tzinfo is None) else field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone() is not None
    if inserted:
        message._state.adding = False
        message._state.db = "default"
    return inserted


def _first_reachable(tenant: Tenant, spec: SendSpec, known: Recipient | None = None) -> SendSpec:
    """With a fallback list, skip channels the recipient has no address for or no provider serves."""
    if not spec.fallback:
        return spec
    if not spec.recipient_id:
        raise errors.ValidationFailed("fallback_channels need a recipient_id (addresses come from the directory).",
                                      details={"field": "fallback_channels"})
    recipient = _directory(tenant, spec.recipient_id, known)
    if recipient is None:
        raise errors.RecipientNotFound(f"No recipient '{spec.recipient_id}'.", details={"recipient_id": spec.recipient_id})
    chain = [spec.channel, *spec.fallback]
    for index, channel in enumerate(chain):
        try:
            recipient_address_for(channel, recipient)
        except errors.CommsError:
            continue
        if routing.channel_available(tenant_id=tenant.id, channel=channel, category=spec.category):
            return replace(spec, channel=channel, fallback=tuple(chain[index + 1:]))
    raise errors.InvalidAddress(f"Recipient '{recipient.external_id}' is reachable on none of {', '.join(chain)}.",
                                details={"channels": chain})


def message_enqueue(*, tenant: Tenant, spec: SendSpec, idempotency_key: str | None = None,
                    now: datetime | None = None, fallback_of: Any = None, recipient: Recipient | None = None,
                    template_version: Any = None, screened: bool = False, probe: bool = True) -> tuple[Message, bool]:
    """Accept one message. Returns (message, created); a replayed idempotency key returns the first.

    Concurrent requests with one key race on the unique index: exactly one insert wins and the
    others read the winner's committed row.

    The router, which has already loaded the recipient, resolved the template's active version and
    made the preference decision for this channel at `now`, passes them (`recipient`,
    `template_version`, `screened=True`) so none of it is looked up or decided a second time. A caller
    whose key cannot exist yet (a journey's run + step, written in the transaction that advances that
    step) passes `probe=False`: the insert's ON CONFLICT still catches a duplicate, one round trip less.
    """
    now = now or timezone.now()
    fingerprint = spec.fingerprint()
    if idempotency_key and probe:
        existing = Message.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
    known = recipient
    spec = _first_reachable(tenant, spec, known)
    check_sendable(tenant=tenant, spec=spec, now=now)
    recipient, address = _resolve(tenant, spec, known)
    if not spec.fallback and not screened:  # early answer; with a fallback chain the worker blocks and falls back instead
        screening.refuse_if_blocked(tenant=tenant, recipient=recipient, channel=spec.channel,
                                    category=spec.category, address=address, now=now)
    if spec.channel == Channel.WEBHOOK:
        endpoint_active(tenant=tenant, url=address)
        resolve_safe(address)  # DNS may have changed since registration; the worker checks again
    status, due = initial_state(spec, now)
    message = Message(
        tenant=tenant, channel=spec.channel, priority=spec.priority, category=spec.category,
        status=status, recipient=recipient, recipient_address=address, template_key=spec.template_key,
        subject=spec.subject, body=spec.body, body_html=spec.body_html, variables=spec.variables,
        metadata=spec.metadata, idempotency_key=idempotency_key or None, request_hash=fingerprint,
        next_attempt_at=due, scheduled_for=spec.scheduled_for, created_at=now, updated_at=now, locale=spec.locale,
        fallback_channels=list(spec.fallback), fallback_of_id=fallback_of,
        pool=pools.pool_resolve(tenant_id=tenant.id, channel=spec.channel, category=spec.category,
                                override=spec.pool),
    )
    if spec.template_key:
        _render_template(message, spec, recipient, template_version)
    if not _insert(message):
        return _replay(Message.objects.get(tenant=tenant, idempotency_key=idempotency_key), fingerprint)
    if status == Status.QUEUED:
        wakeup.wake_on_commit({spec.priority})
    return message, True


@transaction.atomic
def message_cancel(*, tenant: Tenant, message_id: Any, now: datetime | None = None, actor: Any = None,
                   ip: str | None = None, audit_reason: str = "") -> Message:
    """Cancel a message that no worker has taken yet; anything already sending is past recall.
    Called for an actor (a user, an API key), it is audited as ``message.cancel``."""
    now = now or timezone.now()
    message = Message.objects.select_for_update().filter(tenant=tenant, id=message_id).first()
    if message is None:
        raise errors.NotFound("No such message.")
    if message.status not in CANCELLABLE:
        raise errors.NotCancellable(f"Message is '{message.status}' and can no longer be cancelled.",
                                    details={"status": message.status})
    before = message.status
    message.status = Status.CANCELLED
    message.updated_at = now
    message.save(update_fields=["status", "updated_at"])
    DeliveryLog.objects.create(message=message, event=LogEvent.CANCELLED, at=now, attempt=message.attempt_count)
    if actor is not None:
        audit_record(actor=actor, action="message.cancel", target=message, ip=ip, reason=audit_reason,
                     diff={"status": [before, message.status]})
    return message


@transaction.atomic
def message_requeue(*, tenant: Tenant, message_id: Any, reason: str = "", now: datetime | None = None,
                    actor: Any = None, ip: str | None = None, audit_reason: str = "") -> Message:
    """Send a dead (DLQ) or failed message again with a fresh retry budget. ``reason`` goes to the
    delivery log; called for an actor, the audit row (``message.requeue``) carries ``audit_reason``."""
    now = now or timezone.now()
    message = Message.objects.select_for_update().filter(tenant=tenant, id=message_id).first()
    if message is None:
        raise errors.NotFound("No such message.")
    if message.status not in (Status.DEAD, Status.FAILED):
        raise errors.NotRequeueable(details={"status": message.status})
    before = message.status
    message.status = Status.QUEUED
    message.attempt_count = 0
    message.next_attempt_at = now
    message.failure_code = ""
    message.failure_reason = ""
    message.failed_at = None
    message.updated_at = now
    message.save(update_fields=["status", "attempt_count", "next_attempt_at", "failure_code", "failure_reason",
                                "failed_at", "updated_at"])
    DeliveryLog.objects.create(message=message, event=LogEvent.REQUEUED, at=now, detail=reason[:2000])
    if actor is not None:
        audit_record(actor=actor, action="message.requeue", target=message, ip=ip, reason=audit_reason,
                     diff={"status": [before, message.status]})
    wakeup.wake_on_commit({message.priority})
    return message


def system_email_enqueue(*, tenant: Tenant, recipient_id: str, subject: str, body: str, body_html: str,
                         category: str, priority: int, metadata: dict, idempotency_key: str) -> tuple[Message, bool]:
    """An email comms itself sends to a directory recipient (a double opt-in confirmation), through
    the one send pipeline. Apps below delivery (preferences) reach it through the dotted path
    COMMS_SYSTEM_EMAIL_SENDER instead of importing delivery."""
    spec = SendSpec(channel="email", recipient_id=recipient_id, subject=subject, body=body, body_html=body_html,
                    category=category, priority=priority, metadata=metadata)
    return message_enqueue(tenant=tenant, spec=spec, idempotency_key=idempotency_key)
