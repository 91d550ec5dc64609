"""Request shapes of the campaigns and segments API (shape only; rules in services)."""

from __future__ import annotations

from rest_framework import serializers

from comms.enums import Category, Channel
from comms.serializers import PriorityField, StrictSerializer


class SegmentSerializer(StrictSerializer):
    name = serializers.SlugField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    filter = serializers.DictField()


class CampaignSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), min_length=1,
                                     max_length=5)
    template = serializers.CharField(max_length=128)
    variables = serializers.DictField(required=False, default=dict)
    category = serializers.ChoiceField(choices=Category.choices, required=False, default=Category.MARKETING)
    priority = PriorityField(required=False, default=3)
    audience = serializers.DictField(help_text='{"recipients": [...]} | {"segment": "name"} | {"csv": "text"}')
    schedule = serializers.DictField(required=False, default=dict,
                                     help_text=('{"at": iso} | {"local_date": "2026-12-01", "local_time": "09:00"} | '
                                                '{"best_within_hours": 24[, "at": iso]}'))
    throttle_per_minute = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    ab_test = serializers.DictField(required=False, default=dict, help_text=(
        '{"sample_percent": 10, "wait_hours": 4, "metric": "open", "min_sample": 100, "default_variant": "A"}'))


class AbDecideSerializer(StrictSerializer):
    variant = serializers.CharField(required=False, max_length=64, help_text="Force this variant (needs a reason).")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
