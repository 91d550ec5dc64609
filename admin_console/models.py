"""The audit trail: every state-changing admin or API action, append-only."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to which object, with the change and why. A trigger refuses UPDATE/DELETE."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint and no cascade: the trail outlives users and tenants (the label stays).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              related_name="+", db_constraint=False)
    actor_label = models.CharField(max_length=200, help_text="User name or API key prefix, kept if the user goes.")
    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
                               db_constraint=False)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=255, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"


# --- aggregates for the dashboards -----------------------------------------------------------------
# Maintained by statement-level triggers on delivery_message / delivery_deliverylog (migration 0004),
# which append to *_delta tables without any index or lock contention; `stats.rollup` (beat, every
# few seconds) folds the deltas in. Readers add the pending deltas, so figures are always exact.

class QueueGauge(models.Model):
    """How many messages are in each (tenant, priority, channel, status, reason) right now."""

    tenant_id = models.UUIDField()
    priority = models.SmallIntegerField()
    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    reason = models.CharField(max_length=64, blank=True, help_text="failure_code of blocked/deferred/failed/dead rows")
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "priority", "channel", "status", "reason"],
                                               name="queuegauge_key")]


class EventMinute(models.Model):
    """Delivery-log events per minute, channel and provider (send rates over the last 24 h)."""

    minute = models.DateTimeField()
    tenant_id = models.UUIDField()
    channel = models.CharField(max_length=16)
    provider = models.CharField(max_length=64, blank=True)
    event = models.CharField(max_length=24)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["minute", "tenant_id", "channel", "provider", "event"],
                                               name="eventminute_key")]


class EventDay(models.Model):
    """Delivery-log events per day, channel, provider, template and category (7-day quality, charts)."""

    day = models.DateField()
    tenant_id = models.UUIDField()
    channel = models.CharField(max_length=16)
    provider = models.CharField(max_length=64, blank=True)
    template_key = models.CharField(max_length=128, blank=True)
    category = models.CharField(max_length=32, blank=True)
    event = models.CharField(max_length=24)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["day", "tenant_id", "channel", "provider", "template_key", "category", "event"],
            name="eventday_key")]
