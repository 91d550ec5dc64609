"""Request and response shapes of the messages API (shape and format only; rules live in services)."""

from __future__ import annotations

from rest_framework import serializers

from comms.enums import Category, Channel, Priority
from comms.serializers import StrictSerializer

MAX_METADATA_BYTES = 16 * 1024


def _channel(value: str) -> str:
    if value not in Channel.values:
        raise serializers.ValidationError(
            f"Unknown channel '{value}'; use one of {', '.join(Channel.values)}.", code="COMMS_UNKNOWN_CHANNEL"
        )
    return value


def _priority(value) -> int:
    try:
        return int(Priority.parse(value))
    except (ValueError, TypeError):
        raise serializers.ValidationError("priority is 0-4, P0-P4, or critical/high/normal/low.") from None


def _metadata(value: dict) -> dict:
    import json

    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"metadata is larger than {MAX_METADATA_BYTES} bytes.",
                                          code="COMMS_CONTENT_TOO_LARGE")
    return value


class ContentFields(StrictSerializer):
    channel = serializers.CharField(validators=[_channel])
    subject = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body_html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    template = serializers.CharField(required=False, allow_blank=True, max_length=128, default="",
                                     help_text="Template key; renders the active version (templates issue).")
    variables = serializers.DictField(required=False, default=dict)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=35, default="")
    priority = serializers.JSONField(required=False, default=2, validators=[_priority])
    category = serializers.ChoiceField(choices=Category.choices, required=False, default=Category.TRANSACTIONAL)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True, default=None)
    metadata = serializers.DictField(required=False, default=dict, validators=[_metadata])
    idempotency_key = serializers.CharField(required=False, max_length=255, allow_blank=True, default="")

    def validate_priority(self, value) -> int:
        return _priority(value)


class MessageCreateSerializer(ContentFields):
    to = serializers.CharField(required=False, allow_blank=True, max_length=2048, default="",
                               help_text="Raw address: email, E.164 phone, device token, URL.")
    recipient_id = serializers.CharField(required=False, allow_blank=True, max_length=255, default="",
                                         help_text="External id of a recipient in the directory.")

    def validate(self, attrs):
        if not attrs["to"] and not attrs["recipient_id"]:
            raise serializers.ValidationError({"to": ["Give 'to' (an address) or 'recipient_id'."]},
                                              code="COMMS_INVALID_ADDRESS")
        return attrs


class BulkCreateSerializer(ContentFields):
    # Recipients are validated by the bulk service in one fast pass, not by 100,000 serializers.
    recipients = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    skip_invalid = serializers.BooleanField(required=False, default=False)


class DeliveryLogSerializer(serializers.Serializer):
    event = serializers.CharField()
    at = serializers.DateTimeField()
    attempt = serializers.IntegerField()
    provider = serializers.CharField()
    status_code = serializers.CharField()
    detail = serializers.CharField()


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
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_recipient_id(self, obj) -> str | None:
        return obj.recipient.external_id if obj.recipient_id else None


class MessageDetailSerializer(MessageSerializer):
    body = serializers.CharField()
    body_html = serializers.CharField()
    delivery_log = DeliveryLogSerializer(source="logs.all", many=True)


class BulkResultSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(source="batch.id")
    status = serializers.SerializerMethodField()
    requested = serializers.IntegerField(source="batch.requested")
    accepted = serializers.IntegerField(source="batch.accepted")
    rejected = serializers.IntegerField(source="batch.rejected")
    errors = serializers.ListField(child=serializers.DictField())

    def get_status(self, obj) -> str:
        return "scheduled" if obj.batch.scheduled_for and obj.batch.scheduled_for > obj.batch.created_at else "queued"
