"""Conversions: a caller reports that a message's recipient did what the message asked (bought, signed up).

A conversion is one more engagement event of a message, recorded like our own opens and clicks:
a ``converted`` MessageEvent (its value and currency in ``data``), the message's FirstEvent of kind
``converted`` (a message converts at most once in the counters, as it opens at most once), and the
``converted_count`` of every metrics row the message counts towards (campaign, batch, template
version, variant) — so the A/B results with ``metric=conversion`` and the campaign metrics see it.

Retries: with an idempotency key the event's id is derived from (message, key), and the events
table's unique (provider, provider_event_id) index makes a retried call a no-op that returns the
first conversion; the same key with a different value or currency is a conflict. Without a key each
call is a separate event (the unique count still counts the message once).

Attribution window: a conversion counts within ``COMMS_TRACKING_TOKEN_DAYS`` of the send, the same
window in which our open pixel and click redirect still count (older ones are refused, not stored).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import list_currencies
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from comms import errors
from delivery.models import Message
from tracking.models import EventType, FirstEvent, MessageEvent
from tracking.normalised import NormalisedEvent
from tracking.services.events import MESSAGE_FIELDS, Item, Outcome, events_apply

BadValue = errors.error_class("COMMS_CONVERSION_BAD_VALUE", 400,
                              "value is a non-negative amount with an ISO 4217 currency.")
NotSent = errors.error_class("COMMS_CONVERSION_NOT_SENT", 409, "The message has not been sent; nothing to convert.")
TooLate = errors.error_class("COMMS_CONVERSION_TOO_LATE", 422,
                             "The conversion lies outside the attribution window after the send.")

PROVIDER = "api"  # MessageEvent.provider of conversions (ours: "comms"; webhooks: the ESP's name)
MAX_VALUE = Decimal("1e12")
CLOCK_SKEW = timedelta(minutes=5)  # a caller's clock a little ahead of ours is not an error
_CURRENCIES = frozenset(list_currencies())


@dataclass
class Conversion:
    event: MessageEvent
    message: Message
    created: bool  # False: a retry with the same idempotency key (the first conversion is returned)
    first: bool  # the message's first conversion (the one the unique counters count)

    def as_dict(self) -> dict[str, Any]:
        data = self.event.data or {}
        return {"id": self.event.pk, "message_id": str(self.event.message_id),
                "occurred_at": self.event.timestamp, "value": data.get("value"), "currency": data.get("currency"),
                "first_conversion": self.first, "duplicate": not self.created}


def _amount(value: Any, currency: Any) -> tuple[str | None, str | None]:
    """(value as a decimal string, currency) or (None, None); BadValue for anything else."""
    if value is None and currency in (None, ""):
        return None, None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadValue(details={"value": value, "currency": currency})
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(details={"value": str(value)})
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadValue(details={"value": value}) from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_VALUE or amount.as_tuple().exponent < -6:
        raise BadValue(details={"value": str(value)})
    if not isinstance(currency, str) or currency.upper() not in _CURRENCIES:
        raise BadValue("currency is an ISO 4217 code (EUR, USD…) and goes with a value.",
                       details={"currency": currency})
    return format(amount.normalize(), "f"), currency.upper()


def _event_id(message_id: uuid.UUID, key: str) -> str:
    """One id per (message, key): a retried call meets the unique index (hashed to fit 255 characters)."""
    return "conv:" + hashlib.sha256(f"{message_id}|{key}".encode()).hexdigest()


def conversion_record(*, tenant: Any, message_id: Any, value: Any = None, currency: Any = None,
                      occurred_at: datetime | None = None, idempotency_key: str | None = None,
                      now: datetime | None = None) -> Conversion:
    """Record one conversion of a tenant's sent message (see the module docstring for the rules).

    NotFound for an unknown message or another tenant's (the same answer: ids are not probed),
    NotSent before it was sent, TooLate outside the attribution window, BadValue for an amount,
    ValidationFailed for a time in the future or before the send, IdempotencyConflict for a key
    reused with another amount.
    """
    now = now or timezone.now()
    try:
        pk = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
    except ValueError:
        raise errors.NotFound("No such message.") from None
    amount, code = _amount(value, currency)
    message = Message.objects.only(*MESSAGE_FIELDS, "created_at").filter(pk=pk, tenant=tenant).first()
    if message is None:
        raise errors.NotFound("No such message.")
    if message.sent_at is None:
        raise NotSent(details={"status": message.status})
    at = occurred_at or now
    if at > now + CLOCK_SKEW:
        raise errors.ValidationFailed("occurred_at lies in the future.", details={"occurred_at": at.isoformat()})
    if at < message.sent_at - CLOCK_SKEW:
        raise errors.ValidationFailed("occurred_at lies before the message was sent.",
                                      details={"occurred_at": at.isoformat(), "sent_at": message.sent_at.isoformat()})
    window = timedelta(days=settings.COMMS_TRACKING_TOKEN_DAYS)
    if at > message.sent_at + window:
        raise TooLate(details={"sent_at": message.sent_at.isoformat(), "window_days": window.days})
    data = {k: v for k, v in (("value", amount), ("currency", code)) if v is not None}
    event_id = _event_id(pk, idempotency_key) if idempotency_key else ""
    if event_id:
        first = _replay(event_id, data, message)
        if first is not None:
            return first
    event = NormalisedEvent(provider=PROVIDER, event_type=EventType.CONVERTED, event_id=event_id,
                            message_id=str(pk), timestamp=at, data=data,
                            # Without a key the hashed id must still differ per call (the time is ours).
                            raw_type="" if event_id else f"converted@{now.isoformat()}:{uuid.uuid4()}")
    with transaction.atomic():
        first_ever = not FirstEvent.objects.filter(message_id=pk, event_type="converted").exists()
        outcome = events_apply(items=[Item(event, None, message)], now=now)[0].outcome
    if outcome != Outcome.APPLIED:  # a concurrent retry with the same key won the unique index
        replay = _replay(event_id, data, message) if event_id else None
        if replay is None:
            raise errors.Internal("The conversion was not recorded; retry.")
        return replay
    row = MessageEvent.objects.get(provider=PROVIDER, provider_event_id=event.stable_id())
    return Conversion(event=row, message=message, created=True, first=first_ever)


def _replay(event_id: str, data: dict, message: Message) -> Conversion | None:
    """The conversion an earlier call with this key recorded; a conflict if its amount differs."""
    row = MessageEvent.objects.filter(provider=PROVIDER, provider_event_id=event_id).first()
    if row is None:
        return None
    if {k: row.data.get(k) for k in ("value", "currency") if k in row.data} != data:
        raise errors.IdempotencyConflict(details={"first": {k: row.data.get(k) for k in ("value", "currency")}})
    first = (FirstEvent.objects.filter(message_id=message.pk, event_type="converted")
             .values_list("at", flat=True).first())
    return Conversion(event=row, message=message, created=False, first=first == row.timestamp)
