"""Engagement and delivery events, campaign metrics and deliverability alerts.

MessageEvent rows are the raw material: every normalised provider event and every open/click we
track ourselves. CampaignMetrics are counters kept incrementally as events arrive and rebuilt from
MessageEvent + Message rows by ``metrics_reconcile`` (EC-COM-028: near-real-time, exact in batch).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventType(models.TextChoices):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    SENT = "sent"
    # A voice call's <Gather>: the recipient pressed a key (the digit is in the event's data).
    GATHERED = "gathered"
    # A caller reported that the recipient did what the message asked (POST /messages/{id}/conversions).
    CONVERTED = "converted"
    UNKNOWN = "unknown"


class BounceType(models.TextChoices):
    NONE = "", "-"
    HARD = "hard"
    SOFT = "soft"


class DeviceType(models.TextChoices):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    UNKNOWN = "unknown"


class MessageEvent(models.Model):
    """One thing that happened to a sent message (seed 000 MessageEvent, plus provider bookkeeping)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    message = models.ForeignKey("delivery.Message", on_delete=models.CASCADE, related_name="events",
                                db_constraint=False, db_index=False)
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    bounce_type = models.CharField(max_length=4, choices=BounceType.choices, blank=True, default="")
    provider = models.CharField(max_length=32, help_text="'comms' for our own open/click tracking.")
    provider_event_id = models.CharField(max_length=255, blank=True)
    webhook = models.ForeignKey("webhooks.WebhookEvent", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_constraint=False)
    recipient_address = models.CharField(max_length=512, blank=True)
    timestamp = models.DateTimeField(default=timezone.now, help_text="When it happened (provider's clock).")
    recorded_at = models.DateTimeField(default=timezone.now)
    link_url = models.CharField(max_length=2048, blank=True)
    link_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True, help_text="Truncated (/24, /48).")
    user_agent = models.CharField(max_length=512, blank=True)
    device_type = models.CharField(max_length=8, choices=DeviceType.choices, blank=True)
    client = models.CharField(max_length=64, blank=True, help_text="Coarse client: Gmail, Apple Mail, Chrome…")
    geo_country = models.CharField(max_length=2, blank=True)
    geo_city = models.CharField(max_length=128, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["message", "event_type"], name="msgevent_message_idx"),
            models.Index(fields=["recipient_address", "event_type", "timestamp"], name="msgevent_address_idx"),
            models.Index(fields=["event_type", "recorded_at"], name="msgevent_type_time_idx"),
        ]
        constraints = [
            # Idempotency (EC-COM-023): a provider event delivered 46 times is recorded once.
            models.UniqueConstraint(fields=["provider", "provider_event_id"], condition=~Q(provider_event_id=""),
                                    name="msgevent_unique_provider_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class FirstEvent(models.Model):
    """The first event of a kind per message: unique opens/clicks are counted exactly once, even when
    two opens race (the primary key decides who was first)."""

    message_id = models.UUIDField()
    event_type = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message_id", "event_type"], name="firstevent_unique")]


class CampaignMetrics(models.Model):
    """Counters for one campaign, bulk batch or template version (and variant)."""

    class Scope(models.TextChoices):
        CAMPAIGN = "campaign"
        BATCH = "batch"
        TEMPLATE_VERSION = "template_version"
        VARIANT = "variant"

    COUNTERS = ("sent", "delivered", "bounced", "hard_bounced", "opened", "clicked", "unsubscribed",
                "complained", "failed", "converted")

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    key = models.CharField(max_length=200, help_text="Campaign id, batch id, version id or 'version:variant'.")
    campaign_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    delivered_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0, help_text="Hard + soft bounces (unique per message).")
    hard_bounced_count = models.PositiveIntegerField(default=0)
    opened_count = models.PositiveIntegerField(default=0, help_text="Unique opens.")
    clicked_count = models.PositiveIntegerField(default=0, help_text="Unique clicks.")
    unsubscribed_count = models.PositiveIntegerField(default=0)
    complained_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    converted_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_updated = models.DateTimeField(default=timezone.now)
    reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "campaign metrics"
        constraints = [models.UniqueConstraint(fields=["tenant", "scope", "key"], name="campaignmetrics_unique")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(part * 100.0 / whole, 2) if whole else None

    @property
    def delivery_rate(self) -> float | None:
        return self._rate(self.delivered_count, self.sent_count)

    @property
    def open_rate(self) -> float | None:
        return self._rate(self.opened_count, self.delivered_count)

    @property
    def click_rate(self) -> float | None:
        return self._rate(self.clicked_count, self.delivered_count)

    @property
    def bounce_rate(self) -> float | None:
        return self._rate(self.bounced_count, self.sent_count)

    @property
    def complaint_rate(self) -> float | None:
        return self._rate(self.complained_count, self.sent_count)

    @property
    def conversion_rate(self) -> float | None:
        """Messages that converted per message sent (a conversion need not follow a tracked open)."""
        return self._rate(self.converted_count, self.sent_count)


class DeliverabilityAlert(models.Model):
    """A rolling 7-day rate that crossed its threshold (seed 001: hard bounce 0.3 %, complaint 0.1 %)."""

    class Metric(models.TextChoices):
        HARD_BOUNCE = "hard_bounce"
        COMPLAINT = "complaint"

    class Subject(models.TextChoices):
        PROVIDER = "provider"
        SENDING_DOMAIN = "sending_domain"
        VARIANT = "variant"

    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=16, choices=Subject.choices)
    key = models.CharField(max_length=200)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    rate = models.FloatField(help_text="Percent.")
    threshold = models.FloatField(help_text="Percent.")
    sent = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    action = models.CharField(max_length=64, blank=True, help_text="What was done, e.g. 'variant paused'.")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open alert per subject and metric: a breach that persists is not re-raised each run.
            models.UniqueConstraint(fields=["subject", "key", "metric"], condition=Q(resolved_at__isnull=True),
                                    name="alert_one_open"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.rate:.2f}% on {self.subject} {self.key}"


class TrackingMiss(models.Model):
    """A click or open we could not count cleanly (expired token, purged message): EC-COM-027."""

    message_id = models.UUIDField(null=True, blank=True)
    kind = models.CharField(max_length=16, help_text="click or open")
    reason = models.CharField(max_length=64)
    token = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "tracking misses"


class AnomalySeries(models.Model):
    """One watched hourly series (e.g. 'failure_rate:twilio') and its baseline state (tracking.anomaly)."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32)
    state = models.JSONField(default=dict)
    last_hour = models.DateTimeField(null=True, blank=True, help_text="The last hour judged (UTC, start).")
    recent = models.JSONField(default=list, help_text="The last 48 points [hour, observed, baseline].")

    def __str__(self) -> str:
        return self.key


class AnomalyAlert(models.Model):
    """A series that left its baseline for `persistence` hours, with the evidence (AI-COM-007/011)."""

    series = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)
    hour = models.DateTimeField(help_text="The hour that raised it.")
    observed = models.FloatField()
    baseline = models.FloatField()
    sigma = models.FloatField()
    z = models.FloatField()
    volume = models.FloatField(default=0)
    evidence = models.JSONField(default=dict, help_text="Recent points of the series and the parameters.")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    tenant_id = models.UUIDField(null=True, blank=True,
                                 help_text="The tenant a series belongs to (SMS spend); empty for system-wide series.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True, help_text="Who acknowledged it (user or API key).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series"], condition=Q(resolved_at__isnull=True),
                                               name="anomalyalert_one_open")]
        indexes = [models.Index(fields=["-hour", "-id"], name="anomalyalert_hour_idx")]

    def __str__(self) -> str:
        return f"{self.series} {self.observed:g} vs {self.baseline:g}"


class RecipientEngagement(models.Model):
    """Engagement and re-engagement scores and the best channel of one recipient (tracking.scores)."""

    tenant_id = models.UUIDField()
    recipient_id = models.UUIDField()
    score = models.FloatField(help_text="0..1: recent and frequent engagement.")
    reengagement = models.FloatField(help_text="0..1: engaged before, lapsed since (win-back candidates).")
    best_channel = models.CharField(max_length=16, blank=True)
    channels = models.JSONField(default=dict, help_text="{channel: {sent, engaged, rate}}")
    last_engaged_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient_id"], name="engagement_one_per_recipient")]
        indexes = [models.Index(fields=["tenant_id", "score"], name="engagement_tenant_score_idx"),
                   # the console's win-back list: a tenant's highest re-engagement scores first
                   models.Index(fields=["tenant_id", "-reengagement"], name="engagement_tenant_reeng_idx")]


class EngagementDay(models.Model):
    """Opens and clicks of one UTC day per tenant, provider, device and the event's UTC hour and weekday.

    Written by ``events_apply`` (one upsert per applied set, tracking.services.engagement_days) so the
    engagement report reads days × active keys, never events. `day` is the day the event was recorded
    (as the report's period always was); `hour` (0–23) and `weekday` (ISO 1 = Monday) are the event's own
    time. `total` counts events; `uniques` counts messages, each once, in the row of the event that won
    its FirstEvent row (a message first opened on day X is a unique open of day X only).
    """

    day = models.DateField()
    tenant_id = models.UUIDField()
    provider = models.CharField(max_length=32)
    device = models.CharField(max_length=8)
    hour = models.SmallIntegerField()
    weekday = models.SmallIntegerField()
    event_type = models.CharField(max_length=16)
    total = models.BigIntegerField(default=0)
    uniques = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["day", "tenant_id", "provider", "device", "hour", "weekday", "event_type"],
            name="tracking_engagementday_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.provider} {self.device} {self.hour}h/{self.weekday} {self.event_type}"
