"""The unified Message table, its append-only DeliveryLog, bulk batches and provider config.

The Message row *is* the queue: workers claim rows with ``FOR UPDATE SKIP LOCKED`` through the
partial index ``message_claim_idx`` (only rows in status 'queued' are in it), so a million-row
P3 backlog costs a P0 claim nothing: the index is ordered by priority first.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from uuid_utils.compat import uuid7

from comms.crypto import decrypt_json, encrypt_json
from comms.enums import Category, Channel, LogEvent, Priority, Status


class MessageBatch(models.Model):
    """One bulk call: the shared content that its (up to 100,000) rows point at."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    category = models.CharField(max_length=32, choices=Category.choices)
    template_key = models.CharField(max_length=128, blank=True)
    template_version = models.ForeignKey("templates_app.TemplateVersion", null=True, blank=True, related_name="+",
                                         on_delete=models.SET_NULL)
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    requested = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "message batches"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                name="batch_unique_idempotency_key",
            ),
        ]


class Message(models.Model):
    """One message to one address on one channel: seed 000's Message plus queue bookkeeping.

    The foreign keys of this table carry no database constraint (db_constraint=False): each would
    add a per-row lookup to every bulk COPY (a third of a 100,000-row fan-out's time). Parents are
    written by the same service in the same transaction, and deletes cascade through the ORM.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered
    # No single-column indexes on tenant and batch: message_tenant_idx/message_address_idx and
    # message_batch_idx serve those lookups, and every index is paid on each row of a COPY fan-out.
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                               db_index=False)
    batch = models.ForeignKey(MessageBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="messages",
                              db_constraint=False, db_index=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P2)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)

    recipient = models.ForeignKey("comms.Recipient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_constraint=False)
    recipient_address = models.CharField(max_length=512)

    # Content. Bulk rows leave these empty and read the batch's shared content at send time.
    template_key = models.CharField(max_length=128, blank=True)
    template_version = models.ForeignKey("templates_app.TemplateVersion", null=True, blank=True, related_name="+",
                                         on_delete=models.SET_NULL, db_constraint=False)
    variant = models.CharField(max_length=32, blank=True, help_text="Experiment variant this recipient got.")
    locale = models.CharField(max_length=35, blank=True)
    artifact = models.CharField(max_length=255, blank=True, help_text="Immutable rendered copy (artifact storage).")
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    variables = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="Rendered structured content (in-app JSON, push data).")

    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    # Multi-channel fallback (EC-COM-010): channels still to try, in order, if this one fails for good.
    fallback_channels = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    fallback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_constraint=False, db_index=False)  # partial index below: almost all NULL

    # Queue bookkeeping: next_attempt_at is when the row may next be claimed (send time, retry time,
    # or the end of a deferral); the lease says who holds a 'sending' row and until when.
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=128, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    provider = models.CharField(max_length=64, blank=True)
    provider_ref = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_reason = models.TextField(blank=True)
    pool = models.CharField(max_length=50, blank=True, default="", db_default="",  # raw INSERTs omit it
                            help_text="Its pool (seed 003 ip_pool).")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The claim path: only queued rows, ordered exactly as workers take them.
            # id breaks ties in creation order (uuid7): rows a dead worker never reached go back to
            # the head of the queue, not behind a bulk backlog that shares their next_attempt_at.
            models.Index(fields=["priority", "next_attempt_at", "id"], condition=Q(status="queued"),
                         name="message_claim_idx"),
            # Tenant fairness (delivery.services.fairness): the tenants with due work at a priority, one
            # index entry each (a skip scan), and each tenant's oldest rows.
            models.Index(fields=["priority", "tenant", "next_attempt_at", "id"], condition=Q(status="queued"),
                         name="message_fair_idx"),
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=["scheduled", "deferred"]),
                         name="message_waiting_idx"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="sending"), name="message_lease_idx"),
            models.Index(fields=["tenant", "id"], name="message_tenant_idx"),
            models.Index(fields=["tenant", "recipient_address"], name="message_address_idx"),
            models.Index(fields=["batch"], name="message_batch_idx"),
            models.Index(fields=["provider_ref"], condition=~Q(provider_ref=""), name="message_provider_ref_idx"),
            models.Index(fields=["fallback_of"], condition=Q(fallback_of__isnull=False), name="message_fallback_of_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                name="message_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.recipient_address} [{self.status}]"


class DeliveryLog(models.Model):
    """Append-only history of a message: every attempt, outcome and provider event.

    A database trigger (migration 0002) refuses UPDATE, so history cannot be rewritten.
    """

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="logs", db_index=False)
    event = models.CharField(max_length=24, choices=LogEvent.choices)
    at = models.DateTimeField(default=timezone.now)
    attempt = models.PositiveSmallIntegerField(default=0)
    provider = models.CharField(max_length=64, blank=True)
    provider_event_id = models.CharField(max_length=255, blank=True)
    status_code = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["message", "id"], name="deliverylog_message_idx")]

    def __str__(self) -> str:
        return f"{self.event} (attempt {self.attempt})"


class ChannelProvider(models.Model):
    """A configured provider for a channel; primary first, failover by `failover` or order."""

    class State(models.TextChoices):
        ACTIVE = "active"
        DEGRADED = "degraded"
        DISABLED = "disabled"

    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.CASCADE,
                               help_text="Empty: serves every tenant.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    name = models.CharField(max_length=64, help_text="Unique label, e.g. 'ses-eu'.")
    provider_class = models.CharField(max_length=200, help_text="Dotted path, e.g. delivery.providers.smtp.SmtpProvider")
    is_primary = models.BooleanField(default=False)
    order = models.PositiveSmallIntegerField(default=100)
    api_endpoint = models.CharField(max_length=500, blank=True)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    options = models.JSONField(default=dict, blank=True, help_text="Non-secret settings (from address, region…).")
    rate_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Messages per second.")
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    failover = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    categories = ArrayField(models.CharField(max_length=32, choices=Category.choices), default=list, blank=True,
                            help_text="Serve only these message categories (empty: all). Category rows come first "
                                      "for their categories, e.g. marketing email through its own provider.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="provider_unique_name")]
        ordering = ["channel", "-is_primary", "order"]

    def __str__(self) -> str:
        return f"{self.channel}:{self.name}"

    @property
    def credentials(self) -> dict:
        return decrypt_json(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = encrypt_json(value)

    @property
    def webhook_secret(self) -> str:
        return decrypt_json(self.webhook_secret_encrypted) or ""

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.webhook_secret_encrypted = encrypt_json(value)


class WebhookEndpoint(models.Model):
    """A subscriber URL for the webhook channel, with its signing secrets (Standard Webhooks).

    Rotation keeps the previous secret valid until ``previous_expires_at``; during that window
    every delivery carries both signatures. A 410 Gone from the subscriber disables the endpoint.
    """

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=200, blank=True)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "url"], name="webhook_endpoint_unique_url")]

    def __str__(self) -> str:
        return self.url

    def secrets(self, now) -> list[str]:
        current = [decrypt_json(self.secret_encrypted)]
        if self.previous_secret_encrypted and self.previous_expires_at and self.previous_expires_at > now:
            current.append(decrypt_json(self.previous_secret_encrypted))
        return current


class InAppNotification(models.Model):
    """One item in a recipient's in-app inbox, created when an in_app message is delivered."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="inbox")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="in_app", db_constraint=False)
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    deep_link = models.CharField(max_length=2048, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    data = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "-id"], name="inbox_recipient_idx"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True, archived_at__isnull=True),
                         name="inbox_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.title or self.body[:40]


class ChannelHealth(models.Model):
    """Per provider: the health the dashboards read (seed 003's channel_health), persisted from the
    Redis counters and breaker state by beat's housekeeping (see services.channel_health)."""

    channel = models.CharField(max_length=16, blank=True)
    provider = models.CharField(max_length=64, unique=True)
    is_healthy = models.BooleanField(default=True, help_text="Circuit closed.")
    state = models.CharField(max_length=16, default="closed", help_text="Circuit breaker: closed, open, half_open.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    ok_1h = models.PositiveIntegerField(default=0)
    failed_1h = models.PositiveIntegerField(default=0)
    ok_24h = models.PositiveIntegerField(default=0)
    failed_24h = models.PositiveIntegerField(default=0)
    success_rate_1h = models.FloatField(null=True, blank=True, help_text="Percent.")
    success_rate_24h = models.FloatField(null=True, blank=True, help_text="Percent.")
    latency_avg_ms_1h = models.FloatField(null=True, blank=True)
    latency_p95_ms_1h = models.FloatField(null=True, blank=True)
    latency_avg_ms_24h = models.FloatField(null=True, blank=True)
    latency_p95_ms_24h = models.FloatField(null=True, blank=True)
    max_rate_per_sec = models.FloatField(null=True, blank=True, help_text="The provider's configured rate limit.")
    last_failure_code = models.CharField(max_length=64, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="When the circuit last opened.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "channel health"
        ordering = ["channel", "provider"]

    def __str__(self) -> str:
        return f"{self.channel}:{self.provider} [{self.state}]"


from delivery.deliverability.models_probes import Probe, SuppressionSyncState  # noqa: E402,F401  (registered with delivery)
# Deliverability (issue 19): sending domains, DKIM keys, DNS check history.
from delivery.deliverability.models import DkimKey, DomainCheck, SendingDomain  # noqa: E402,F401
# Deliverability models live in their own package; imported here so Django registers them.
from delivery.deliverability.models_pools import Pool, WarmupCounter, WarmupLadder  # noqa: E402,F401
# Cost tracking (issue 22): prices, envelopes, the daily roll-up.
from delivery.costs.models import CostDaily, CostEnvelope, CostHourly, PriceEntry  # noqa: E402,F401
from delivery.latency.models import OutcomeDay  # noqa: E402,F401  (outcome statistics, upserted by the engine)
