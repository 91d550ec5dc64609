"""Deliverability tables (issue 19): synthetic probes and the suppression-sync cursors.

Imported by delivery/models.py so Django registers them with the delivery app."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from comms.enums import Channel


class Probe(models.Model):
    """One synthetic send to a sandbox address and how long it took to be sent and delivered.

    The message it rides on is flagged ``metadata.probe`` and sent in the internal ``probe`` category,
    which campaign metrics and dashboard stats exclude, so a probe never counts as traffic."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        DELIVERED = "delivered"
        FAILED = "failed"
        SUPPRESSED = "suppressed"  # the sandbox address is suppressed: a probe failure, nothing sent
        TIMEOUT = "timeout"

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    provider = models.CharField(max_length=64, blank=True)
    address = models.CharField(max_length=320)
    message = models.ForeignKey("delivery.Message", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_constraint=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    sent_seconds = models.FloatField(null=True, blank=True)
    delivered_seconds = models.FloatField(null=True, blank=True)
    slo_missed = models.BooleanField(default=False)
    error_code = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["channel", "provider", "-created_at"], name="probe_series"),
                   models.Index(fields=["state"], name="probe_open", condition=models.Q(state__in=["pending", "sent"]))]

    def __str__(self) -> str:
        return f"probe {self.channel}/{self.provider or '-'} {self.state}"


class SuppressionSyncState(models.Model):
    """Per tenant and ESP: how far our suppressions were pushed (a watermark advanced only after the ESP
    accepted them, so a failed push is retried from the same place: nothing lost) and the last import."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    esp = models.CharField(max_length=16)
    pushed_until = models.DateTimeField(null=True, blank=True)
    pushed_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(null=True, blank=True)
    imported_count = models.PositiveIntegerField(default=0)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "esp"], name="suppression_sync_unique")]

    def __str__(self) -> str:
        return f"suppression sync {self.esp}"
