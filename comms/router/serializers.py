"""Request shapes of the events, rules and schedules API (shape only; rules in services)."""

from __future__ import annotations

from rest_framework import serializers

from comms.enums import Category
from comms.serializers import PriorityField, StrictSerializer


class EventSerializer(StrictSerializer):
    name = serializers.CharField(max_length=128)
    recipients = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list)
    audience = serializers.DictField(required=False, default=dict)
    actor = serializers.DictField(required=False, default=dict)
    cause_ref = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    category = serializers.ChoiceField(choices=Category.choices, required=False, default=Category.TRANSACTIONAL)
    priority = PriorityField(required=False, default=2)
    payload = serializers.DictField(required=False, default=dict)


class EventBatchSerializer(StrictSerializer):
    events = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=500)


class RuleSerializer(StrictSerializer):
    definition = serializers.JSONField()
    description = serializers.CharField(required=False, allow_blank=True, default=None, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class DryRunSerializer(StrictSerializer):
    event = serializers.DictField()
    definition = serializers.JSONField(required=False, default=None, allow_null=True,
                                       help_text="Try an unsaved definition instead of the active version.")


class ScheduleSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    cron = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    run_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    event = serializers.DictField()


class ScheduleUpdateSerializer(StrictSerializer):
    """PATCH /schedules/{id}: any of these; cron and run_at replace each other."""

    name = serializers.CharField(max_length=200, required=False)
    cron = serializers.CharField(max_length=120, required=False, allow_blank=True)
    run_at = serializers.DateTimeField(required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False)
    event = serializers.DictField(required=False)


class RuleActivateSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1)
