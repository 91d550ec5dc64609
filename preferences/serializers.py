"""Shapes of the preferences API (formats only; the rules live in services)."""

from __future__ import annotations

from rest_framework import serializers

from comms.enums import Channel
from comms.serializers import json_type_errors
from preferences.models import Frequency, SuppressionReason, UpdatedBy


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error (COMMS_UNKNOWN_FIELD), not silently dropped; a value of another JSON type
    than the schema names is refused (DRF would store 0 as "0")."""

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError({"non_field_errors": [serializers.ErrorDetail(
                f"Unknown field(s): {', '.join(sorted(unknown))}.", code="COMMS_UNKNOWN_FIELD")]})
        wrong = json_type_errors(self.fields, data) if isinstance(data, dict) else {}
        if wrong:
            raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


class PreferenceChangeSerializer(StrictSerializer):
    category = serializers.CharField(max_length=32)
    channel = serializers.ChoiceField(choices=[c for c in Channel.values if c != "webhook"])
    enabled = serializers.BooleanField()
    frequency = serializers.ChoiceField(choices=Frequency.values, required=False)


class QuietHoursSerializer(StrictSerializer):
    category = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    enabled = serializers.BooleanField(required=False, default=True)
    start = serializers.TimeField(required=False, default=None, allow_null=True)
    end = serializers.TimeField(required=False, default=None, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    channels = serializers.ListField(child=serializers.CharField(max_length=16), required=False, default=list)


class PreferencesPutSerializer(StrictSerializer):
    preferences = PreferenceChangeSerializer(many=True, required=False, default=list)
    quiet_hours = QuietHoursSerializer(many=True, required=False, default=list)
    updated_by = serializers.ChoiceField(choices=UpdatedBy.values, required=False, default=UpdatedBy.SYSTEM)
    source = serializers.CharField(max_length=64, required=False, default="api")
    ip = serializers.IPAddressField(required=False, allow_null=True, default=None)
    user_agent = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    consent_text = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class SubscribeSerializer(StrictSerializer):
    list_id = serializers.CharField(max_length=64)
    channel = serializers.ChoiceField(choices=["email", "sms", "push", "in_app", "voice"], required=False, default="email")
    source = serializers.CharField(max_length=64, required=False, default="api")
    ip = serializers.IPAddressField(required=False, allow_null=True, default=None)
    user_agent = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    consent_text = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class UnsubscribeSerializer(StrictSerializer):
    category = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    channel = serializers.ChoiceField(choices=["email", "sms", "push", "in_app", "voice"], required=False, allow_null=True,
                                      default=None)
    source = serializers.CharField(max_length=64, required=False, default="api")


class SuppressionSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=["email", "sms", "push", "voice"])
    address = serializers.CharField(max_length=4096)
    reason = serializers.ChoiceField(choices=SuppressionReason.values)
    source = serializers.CharField(max_length=64, required=False, default="api")
    detail = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
