"""Read queries: messages (every one scoped to a tenant) and provider configuration (for other apps
that must know how we send: webhook signature keys, sending numbers and domains)."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, Q, QuerySet

from comms import errors
from comms.models import Tenant
from delivery.models import ChannelProvider, DeliveryLog, Message, MessageBatch


def message_list(*, tenant: Tenant, status: str | None = None, channel: str | None = None,
                 recipient: str | None = None, batch: str | None = None) -> QuerySet[Message]:
    queryset = Message.objects.filter(tenant=tenant).select_related("recipient")
    if status:
        queryset = queryset.filter(status=status)
    if channel:
        queryset = queryset.filter(channel=channel)
    if recipient:
        queryset = queryset.filter(Q(recipient_address=recipient) | Q(recipient__external_id=recipient))
    if batch:
        try:
            queryset = queryset.filter(batch_id=uuid.UUID(batch))
        except ValueError:
            raise errors.ValidationFailed("batch must be a UUID.") from None
    return queryset


def message_get(*, tenant: Tenant, message_id: uuid.UUID) -> Message:
    """One message with its log; bulk rows show their batch's shared content."""
    message = (
        Message.objects.filter(tenant=tenant, id=message_id)
        .select_related("recipient", "batch")
        .prefetch_related(Prefetch("logs", queryset=DeliveryLog.objects.order_by("id")))
        .first()
    )
    if message is None:
        raise errors.NotFound("No such message.")
    if message.batch_id:
        message.subject = message.subject or message.batch.subject
        message.body = message.body or message.batch.body
        message.body_html = message.body_html or message.batch.body_html
    return message


def providers_of_class(*, provider_class: str) -> QuerySet[ChannelProvider]:
    """Configured providers whose class path ends with `provider_class` (e.g. "twilio.TwilioProvider"),
    of every tenant: an inbound webhook must be checkable before we know whose it is."""
    return ChannelProvider.objects.filter(provider_class__endswith=provider_class)


def providers_for_number(*, provider_class: str, number: str) -> QuerySet[ChannelProvider]:
    """Tenants' providers of `provider_class` that send from `number` (its ``from_number`` option)."""
    return providers_of_class(provider_class=provider_class).filter(options__from_number=number,
                                                                    tenant__isnull=False)


def provider_options(*, name: str) -> dict:
    """The options of the provider configured under `name` (the first such row), or {}."""
    return ChannelProvider.objects.filter(name=name).values_list("options", flat=True).first() or {}


def message_address(*, tenant_id: object, message_id: object) -> tuple[str, str] | None:
    """(channel, recipient address) of one message, or None when unknown or erased.

    The unsubscribe page of a message sent to a bare address needs the address it went to;
    preferences sits below delivery, so it reaches this through COMMS_MESSAGE_ADDRESS_SELECTOR."""
    row = (Message.objects.filter(tenant_id=tenant_id, pk=message_id)
           .values_list("channel", "recipient_address").first())
    if row is None or not row[1] or row[1] == "erased":
        return None
    return row[0], row[1]


def delivered_times(*, message_ids: list) -> dict:
    """{message id: delivered_at} for those of `message_ids` a provider reported delivered (or later
    bounced/complained after delivery): conversations turn them into delivered receipts."""
    return dict(Message.objects.filter(pk__in=message_ids, delivered_at__isnull=False)
                .values_list("id", "delivered_at"))


def idempotency_key_used(*, tenant_id: object, key: str | None, bulk: bool = False) -> bool:
    """Whether a message (or bulk batch) already holds this idempotency key: a replay, not new work."""
    if not key:
        return False
    model = MessageBatch if bulk else Message
    return model.objects.filter(tenant_id=tenant_id, idempotency_key=key).exists()
