"""Models of campaigns and saved segments.

The tables keep the names they had when these models belonged to the kernel app (``comms_*``):
moving them to this app changed only Django's state (comms migration 0007, campaigns 0001).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone as dj_timezone
from uuid_utils.compat import uuid7

from comms.enums import Category, Channel, Priority


class Segment(models.Model):
    """A saved audience: a filter over recipient fields and attributes, evaluated in SQL at fan-out."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    name = models.SlugField(max_length=128)
    description = models.TextField(blank=True)
    filter = models.JSONField(default=dict, help_text='{"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}')
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        db_table = "comms_segment"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_unique_name")]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class AudienceKind(models.TextChoices):
        LIST = "list", "List of recipient ids"
        SEGMENT = "segment", "Saved segment"
        CSV = "csv", "Uploaded CSV"

    class ScheduleKind(models.TextChoices):
        NOW = "now", "As soon as scheduled"
        AT = "at", "At a time"
        LOCAL = "local", "At a local time in each recipient's timezone"
        BEST = "best", "Each recipient's best hour"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    template_key = models.CharField(max_length=128)
    variables = models.JSONField(default=dict, blank=True, help_text="Shared variables (CSV columns add per row).")
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.MARKETING)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P3)
    audience_kind = models.CharField(max_length=8, choices=AudienceKind.choices, default=AudienceKind.LIST)
    audience_list = models.JSONField(default=list, blank=True,
                                     help_text="Recipient ids (list) or accepted CSV rows ({recipient_id|to, variables}).")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    audience_errors = models.JSONField(default=list, blank=True, help_text="CSV rows refused, with line and reason.")
    schedule_kind = models.CharField(max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.NOW)
    send_at = models.DateTimeField(null=True, blank=True, help_text="For 'at': the instant.")
    local_date = models.DateField(null=True, blank=True, help_text="For 'local': the day …")
    local_time = models.TimeField(null=True, blank=True, help_text="… and the wall-clock time in each recipient's zone.")
    best_within_hours = models.PositiveSmallIntegerField(null=True, blank=True, help_text=(
        "For 'best': each recipient gets their best hour (tracking/send_time.py) within this many hours "
        "of the start (1..168)."))
    throttle_per_minute = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    start_at = models.DateTimeField(null=True, blank=True, help_text="When the fan-out begins.")
    audience_size = models.PositiveIntegerField(default=0)
    queued_count = models.PositiveIntegerField(default=0, help_text="Rows written so far by the fan-out.")
    fanout_done = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ab_test = models.JSONField(default=dict, blank=True, help_text=(
        "Sample-then-winner settings and state (comms/campaigns/abtest.py); empty: no A/B test."))

    class Meta:
        db_table = "comms_campaign"
        indexes = [models.Index(fields=["state", "start_at"], name="campaign_due_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignBatch(models.Model):
    """One fan-out chunk: a delivery MessageBatch, its place in the throttle plan.

    Chunks are written held (status 'scheduled' far in the future) and released (queued) a few at a
    time by the campaign pump, so pause and cancel only ever touch the rows of a few chunks.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    batch_id = models.UUIDField()
    offset_seconds = models.PositiveIntegerField(default=0, help_text="Throttle slot after the start (or local time).")
    send_at = models.DateTimeField(null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When its held rows were queued.")
    drained_at = models.DateTimeField(null=True, blank=True, help_text="When no row of it was left to send.")
    best_at = models.DateTimeField(null=True, blank=True, help_text=(
        "Best-hour campaigns: the hour chosen for this chunk's recipients (its slot is this plus the throttle "
        "offset); kept for an A/B rest chunk, which gets its slot only when the winner is chosen."))

    class Meta:
        db_table = "comms_campaignbatch"
        constraints = [models.UniqueConstraint(fields=["campaign", "seq", "channel"], name="campaign_batch_unique")]


__all__ = ["Campaign", "CampaignBatch", "Segment"]
