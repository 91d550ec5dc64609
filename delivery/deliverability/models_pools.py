"""Pools (streams of mail with their own route) and warm-up ladders (daily caps per mailbox provider).

Imported by delivery.models so Django registers them in the delivery app.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from comms.enums import Category, Channel

# Seed 001 ("4-week ramp with daily send ladders"): 28 daily caps per mailbox-provider group, roughly
# doubling each of the first days, then +50 % steps, ending at 100,000/day; past the last day: no cap.
DEFAULT_LADDER = (50, 100, 200, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 12_500, 15_000, 20_000, 25_000,
                  30_000, 35_000, 40_000, 45_000, 50_000, 55_000, 60_000, 65_000, 70_000, 75_000, 80_000, 85_000,
                  90_000, 100_000)


class Pool(models.Model):
    """A stream of mail with its own route (seed 003's `ip_pool`): e.g. `transactional`, `marketing`.

    The route is a set of ChannelProvider rows by name (relays, ESP sub-accounts), an SMTP source
    address (the local IP the SMTP provider binds, i.e. the sending IP), or both. Messages of the
    pool's categories use it; admins may name a pool per message.
    """

    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               help_text="Empty: a pool every tenant may use.")
    name = models.CharField(max_length=50, help_text="e.g. 'transactional', 'marketing'.")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    providers = ArrayField(models.CharField(max_length=64), default=list, blank=True,
                           help_text="ChannelProvider names this pool sends through, in failover order "
                                     "(empty: the channel's usual providers).")
    source_address = models.GenericIPAddressField(null=True, blank=True,
                                                  help_text="Local IP the SMTP provider binds (a dedicated IP).")
    categories = ArrayField(models.CharField(max_length=32, choices=Category.choices), default=list, blank=True,
                            help_text="Message categories routed to this pool by default.")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "channel", "name"], name="pool_unique_name",
                                               nulls_distinct=False)]
        ordering = ["channel", "name"]

    def __str__(self) -> str:
        return f"{self.channel}:{self.name}"


class WarmupLadder(models.Model):
    """A daily cap schedule for a new pool (optionally only for one From domain), per mailbox provider.

    Day N of the ladder is (today - started_on) + 1 in UTC; pausing freezes the day (resuming moves
    started_on forward by the paused days), holding stops all sends through it.
    """

    class State(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused", "Paused (the day does not advance)"
        HELD = "held", "Held (nothing is sent)"

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="ladders")
    from_domain = models.CharField(max_length=253, blank=True, help_text="Only mail from this domain (empty: all).")
    schedule = ArrayField(models.PositiveIntegerField(), default=list, help_text="Daily cap per group, day 1 first.")
    group_schedules = models.JSONField(default=dict, blank=True,
                                       help_text="Optional per mailbox-provider group override, e.g. {'gmail': [...]}.")
    started_on = models.DateField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    paused_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pool", "from_domain"], name="warmup_unique_pool_domain")]

    def __str__(self) -> str:
        return f"{self.pool} {self.from_domain}".strip()


class WarmupCounter(models.Model):
    """Sends granted and deferred per ladder, mailbox-provider group and UTC day: the atomic cap."""

    ladder = models.ForeignKey(WarmupLadder, on_delete=models.CASCADE, related_name="counters")
    group = models.CharField(max_length=16)
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)
    deferred = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ladder", "group", "day"], name="warmup_counter_unique")]
        indexes = [models.Index(fields=["ladder", "day"], name="warmup_counter_day_idx")]


__all__ = ["DEFAULT_LADDER", "Pool", "WarmupLadder", "WarmupCounter"]
