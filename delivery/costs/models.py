"""Prices, envelopes and the daily cost roll-up (registered with the delivery app)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from comms.enums import Category, Channel


class PriceEntry(models.Model):
    """What one provider charges for one unit on one channel, optionally for one destination country.

    SMS is priced per segment (GSM 03.38: 160/153 GSM-7 characters, 70/67 UCS-2) and per destination
    country (ISO 3166 alpha-2 of the number, "" = every other country); voice per started minute; the
    other channels per message. A tenant's own row wins over the global one (tenant empty).
    """

    class Unit(models.TextChoices):
        MESSAGE = "message"
        SEGMENT = "segment"
        MINUTE = "minute"

    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=64, help_text="ChannelProvider name (or the settings provider's name).")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166 alpha-2; empty = any.")
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.MESSAGE)
    price = models.DecimalField(max_digits=12, decimal_places=6)
    currency = models.CharField(max_length=3, default="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "delivery"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider", "channel", "country"], nulls_distinct=False,
                                    name="delivery_price_unique"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="delivery_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.channel} {self.country or '*'} {self.price} {self.currency}/{self.unit}"


class CostEnvelope(models.Model):
    """A tenant's monthly budget for one channel (UTC calendar month), and for SMS the categories allowed."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    monthly_budget = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True,
                                         help_text="Empty = no budget.")
    currency = models.CharField(max_length=3, default="USD")
    alert_pct = models.PositiveSmallIntegerField(default=80)
    allowed_categories = ArrayField(models.CharField(max_length=32, choices=Category.choices), default=list, blank=True,
                                    help_text="SMS only: the categories that may use it (empty = all).")
    failover_price_cap = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True,
        help_text="Per unit: a failover provider whose price for the destination is above it is skipped.")
    alerted_month = models.CharField(max_length=7, blank=True, default="", help_text="YYYY-MM of the last alert.")
    exhausted_month = models.CharField(max_length=7, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "delivery"
        constraints = [models.UniqueConstraint(fields=["tenant", "channel"], name="delivery_envelope_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.channel} {self.monthly_budget} {self.currency}"


class CostDaily(models.Model):
    """Spend per UTC day and tenant/channel/provider/campaign/template: upserted as sends are recorded."""

    day = models.DateField()
    tenant_id = models.UUIDField()
    channel = models.CharField(max_length=16)
    provider = models.CharField(max_length=64)
    campaign = models.CharField(max_length=64, blank=True, default="")
    template_key = models.CharField(max_length=128, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    currency = models.CharField(max_length=3)
    messages = models.BigIntegerField(default=0)
    units = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        app_label = "delivery"
        constraints = [models.UniqueConstraint(
            fields=["day", "tenant_id", "channel", "provider", "campaign", "template_key", "country", "currency"],
            name="delivery_costdaily_unique")]
        indexes = [models.Index(fields=["tenant_id", "day"], name="delivery_costdaily_tenant_day")]


class CostHourly(models.Model):
    """SMS spend per UTC hour and tenant (issue 22: the SMS spend anomaly's hourly series). Upserted
    by the same flush as CostDaily (delivery/costs/hourly.py); only SMS, so it stays small."""

    hour = models.DateTimeField()
    tenant_id = models.UUIDField()
    currency = models.CharField(max_length=3)
    messages = models.BigIntegerField(default=0)
    units = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        app_label = "delivery"
        constraints = [models.UniqueConstraint(fields=["hour", "tenant_id", "currency"],
                                               name="delivery_costhourly_unique")]
