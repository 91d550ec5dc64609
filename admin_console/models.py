"""The dashboards' aggregates. (The audit log is the kernel's: comms.models.AuditEntry.)"""

from django.db import models

# --- aggregates for the dashboards -----------------------------------------------------------------
# Maintained by statement-level triggers on delivery_message / delivery_deliverylog (migration 0004),
# which append to *_delta tables without any index or lock contention; `stats.rollup` (beat, every
# few seconds) folds the deltas in. Readers add the pending deltas, so figures are always exact.

class QueueGauge(models.Model):
    """How many messages are in each (tenant, priority, channel, status, reason, provider) right now."""

    tenant_id = models.UUIDField()
    priority = models.SmallIntegerField()
    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    reason = models.CharField(max_length=64, blank=True, help_text="failure_code of blocked/deferred/failed/dead rows")
    provider = models.CharField(max_length=64, blank=True, default="",
                                help_text="The provider that failed (failed/dead rows only; '' otherwise).")
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "priority", "channel", "status", "reason",
                                                       "provider"], name="queuegauge_key_provider")]


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
