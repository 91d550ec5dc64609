"""Request and response shapes of the messages API (shape and format only; rules live in services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from comms.enums import Category, Channel
from comms.serializers import PriorityField, StrictSerializer
from delivery.costs import selectors as cost_selectors

MAX_METADATA_BYTES = 16 * 1024


def _iso(value) -> str | None:
    """DRF's datetime format (ISO 8601, UTC as 'Z')."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _channel(value: str) -> str:
    if value not in Channel.values:
        raise serializers.ValidationError(
            f"Unknown channel '{value}'; use one of {', '.join(Channel.values)}.", code="COMMS_UNKNOWN_CHANNEL"
        )
    return value


def _metadata(value: dict) -> dict:
    import json

    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"metadata is larger than {MAX_METADATA_BYTES} bytes.",
                                          code="COMMS_CONTENT_TOO_LARGE")
    return value


@extend_schema_field(serializers.ChoiceField(choices=Channel.choices))
class ChannelField(serializers.CharField):
    """A channel name; the schema lists the allowed values."""

    def __init__(self, **kwargs):
        super().__init__(validators=[_channel], **kwargs)


class ContentFields(StrictSerializer):
    channel = ChannelField()
    subject = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body_html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    template = serializers.CharField(required=False, allow_blank=True, max_length=128, default="",
                                     help_text="Template key; renders the active version (templates issue).")
    variables = serializers.DictField(required=False, default=dict)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=35, default="")
    priority = PriorityField(required=False, default=2)
    category = serializers.ChoiceField(choices=Category.choices, required=False, default=Category.TRANSACTIONAL)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True, default=None)
    metadata = serializers.DictField(required=False, default=dict, validators=[_metadata])
    idempotency_key = serializers.CharField(required=False, max_length=255, allow_blank=True, default="")


class MessageCreateSerializer(ContentFields):
    to = serializers.CharField(required=False, allow_blank=True, max_length=2048, default="",
                               help_text="Raw address: email, E.164 phone, device token, URL.")
    recipient_id = serializers.CharField(required=False, allow_blank=True, max_length=255, default="",
                                         help_text="External id of a recipient in the directory.")
    fallback_channels = serializers.ListField(
        child=ChannelField(), required=False, default=list, max_length=4,
        help_text="Channels to try next, in order, when the recipient has no address for one or it fails for good.")
    pool = serializers.CharField(
        required=False, allow_blank=True, max_length=50, default="",
        help_text="Admin-scoped keys only: send through this pool (stream) instead of the category's.")

    def validate(self, attrs):
        if not attrs["to"] and not attrs["recipient_id"]:
            raise serializers.ValidationError({"to": ["Give 'to' (an address) or 'recipient_id'."]},
                                              code="COMMS_INVALID_ADDRESS")
        chain = [attrs["channel"], *attrs["fallback_channels"]]
        if len(set(chain)) != len(chain):
            raise serializers.ValidationError({"fallback_channels": ["Each channel may appear once."]})
        return attrs


class BulkCreateSerializer(ContentFields):
    # Recipients are validated by the bulk service in one fast pass, not by 100,000 serializers.
    recipients = serializers.ListField(child=serializers.DictField(), allow_empty=False, min_length=1)
    skip_invalid = serializers.BooleanField(required=False, default=False)


class DeliveryLogSerializer(serializers.Serializer):
    event = serializers.CharField()
    at = serializers.DateTimeField()
    attempt = serializers.IntegerField()
    provider = serializers.CharField()
    status_code = serializers.CharField()
    detail = serializers.CharField()
    data = serializers.DictField(help_text="Extra facts, e.g. per-device outcomes of a push fan-out.")


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    channel = serializers.CharField()
    priority = serializers.IntegerField()
    category = serializers.CharField()
    to = serializers.CharField(source="recipient_address")
    recipient_id = serializers.SerializerMethodField()
    batch_id = serializers.UUIDField(allow_null=True)
    template = serializers.CharField(source="template_key")
    subject = serializers.CharField()
    metadata = serializers.DictField()
    idempotency_key = serializers.CharField(allow_null=True)
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    scheduled_for = serializers.DateTimeField(allow_null=True)
    provider = serializers.CharField()
    provider_ref = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    failure_code = serializers.CharField()
    failure_reason = serializers.CharField()
    pool = serializers.CharField(help_text="The pool (stream) the message was routed by; empty: none.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    cost = serializers.DictField(allow_null=True, help_text=(
        "What sending it cost when its provider has a price: amount, currency, units and unit (SMS segments, "
        "voice minutes, messages), destination country, the price at send and any later adjustment (a "
        "call's real length). Null when unpriced or not sent."))

    def get_recipient_id(self, obj) -> str | None:
        return obj.recipient.external_id if obj.recipient_id else None

    def cost_of(self, obj) -> dict | None:
        """From the page's costs when the view read them in one query (``context["costs"]``); else one
        query, only for a message that was sent (a new message, the hot path, costs nothing)."""
        costs = self.context.get("costs")
        if costs is not None:
            return costs.get(str(obj.id))
        return cost_selectors.message_costs([obj.id]).get(str(obj.id)) if obj.sent_at else None

    def to_representation(self, obj) -> dict:
        # Hand-rolled on the hot path: building DRF's bound fields deep-copies every declared field
        # per instance, which cost more than the rest of a send request. The declared fields above
        # still describe the shape for the OpenAPI schema; tests check the two agree.
        iso = _iso
        return {
            "id": str(obj.id), "status": obj.status, "channel": obj.channel, "priority": obj.priority,
            "category": obj.category, "to": obj.recipient_address, "recipient_id": self.get_recipient_id(obj),
            "batch_id": str(obj.batch_id) if obj.batch_id else None, "template": obj.template_key,
            "subject": obj.subject, "metadata": obj.metadata, "idempotency_key": obj.idempotency_key,
            "attempt_count": obj.attempt_count, "next_attempt_at": iso(obj.next_attempt_at),
            "scheduled_for": iso(obj.scheduled_for), "provider": obj.provider, "provider_ref": obj.provider_ref,
            "sent_at": iso(obj.sent_at), "delivered_at": iso(obj.delivered_at), "failed_at": iso(obj.failed_at),
            "failure_code": obj.failure_code, "failure_reason": obj.failure_reason, "pool": obj.pool,
            "created_at": iso(obj.created_at), "updated_at": iso(obj.updated_at), "cost": self.cost_of(obj),
        }


class MessageDetailSerializer(MessageSerializer):
    body = serializers.CharField()
    body_html = serializers.CharField()
    delivery_log = DeliveryLogSerializer(source="logs.all", many=True)

    def cost_of(self, obj) -> dict | None:
        return cost_selectors.cost_of(log.data for log in obj.logs.all())  # the prefetched log: no query

    def to_representation(self, obj) -> dict:
        data = super().to_representation(obj)
        data["body"], data["body_html"] = obj.body, obj.body_html
        data["delivery_log"] = [creation_event(obj), *DeliveryLogSerializer(obj.logs.all(), many=True).data]
        return data


def creation_event(message) -> dict:
    """The log's first entry, derived from the row itself (it is not stored, see services.enqueue)."""
    scheduled = message.scheduled_for is not None and message.scheduled_for > message.created_at
    return {"event": "scheduled" if scheduled else "queued", "at": _iso(message.created_at), "attempt": 0,
            "provider": "", "status_code": "",
            "detail": f"scheduled for {_iso(message.scheduled_for)}" if scheduled else "", "data": {}}


class BulkResultSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(source="batch.id")
    status = serializers.SerializerMethodField()
    requested = serializers.IntegerField(source="batch.requested")
    accepted = serializers.IntegerField(source="batch.accepted")
    rejected = serializers.IntegerField(source="batch.rejected")
    errors = serializers.ListField(child=serializers.DictField())

    def get_status(self, obj) -> str:
        return "scheduled" if obj.batch.scheduled_for and obj.batch.scheduled_for > obj.batch.created_at else "queued"


class WebhookEndpointSerializer(StrictSerializer):
    # Not URLField: Django's URLValidator refuses hosts such as http://2130706433/ with a 400, where
    # the API promises 422 COMMS_UNSAFE_DESTINATION; endpoint_create checks the form (400) then the
    # destination (422), as comms.netsafe defines them.
    url = serializers.CharField(max_length=2048, trim_whitespace=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


def endpoint_representation(endpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description,
            "created_at": _iso(endpoint.created_at), "disabled_at": _iso(endpoint.disabled_at),
            "disabled_reason": endpoint.disabled_reason,
            "previous_secret_expires_at": _iso(endpoint.previous_expires_at)}
