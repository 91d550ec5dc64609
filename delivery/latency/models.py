"""OutcomeDay: outcomes and latency histograms per UTC day, upserted by the outcome path."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class OutcomeDay(models.Model):
    """Written outcomes of one UTC day for a tenant, channel, provider and priority, per outcome and code.

    `outcome` is the DeliveryLog event the outcome wrote (sent, failed, dead, retrying); `code` its failure
    code ('' when sent). `wait_hist` counts queue waits (due → sent, sent rows only); `call_hist` the
    provider call that decided the outcome (when the engine timed one). Both are dense arrays of
    delivery.latency.buckets.BUCKETS counts. Rows grow with days × active keys, never with messages.
    A day, not an hour: reading a row costs ~15 µs (its 164 histogram sums) and the reports cover whole
    UTC days, so hourly rows would make a long period 24 times dearer (docs/benchmarks.md).
    """

    day = models.DateField()
    tenant_id = models.UUIDField()
    channel = models.CharField(max_length=16)
    provider = models.CharField(max_length=64, blank=True)
    priority = models.SmallIntegerField()
    outcome = models.CharField(max_length=16)
    code = models.CharField(max_length=64, blank=True)
    n = models.BigIntegerField(default=0)
    wait_hist = ArrayField(models.BigIntegerField(), null=True, blank=True)
    call_hist = ArrayField(models.BigIntegerField(), null=True, blank=True)

    class Meta:
        app_label = "delivery"
        constraints = [models.UniqueConstraint(
            fields=["day", "tenant_id", "channel", "provider", "priority", "outcome", "code"],
            name="delivery_outcomeday_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}/{self.provider} P{self.priority} {self.outcome} {self.code}"
