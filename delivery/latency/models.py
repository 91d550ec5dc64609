"""OutcomeHour: outcomes and latency histograms per UTC hour, upserted by the outcome path."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class OutcomeHour(models.Model):
    """Written outcomes of one UTC hour for a tenant, channel, provider and priority, per outcome and code.

    `outcome` is the DeliveryLog event the outcome wrote (sent, failed, dead, retrying); `code` its failure
    code ('' when sent). `wait_hist` counts queue waits (due → sent, sent rows only); `call_hist` the
    provider call that decided the outcome (when the engine timed one). Both are dense arrays of
    delivery.latency.buckets.BUCKETS counts. Rows grow with hours × active keys, never with messages.
    """

    hour = models.DateTimeField()
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
            fields=["hour", "tenant_id", "channel", "provider", "priority", "outcome", "code"],
            name="delivery_outcomehour_unique")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.channel}/{self.provider} P{self.priority} {self.outcome} {self.code}"
