"""Kernel models: tenants, service API keys, the recipient directory and the audit log."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone

from comms.errors import CommsError
from comms.retention_policy import Kind as RetentionKind
from comms.retention_policy import retention_days_validate
from comms.enums import Channel


_LOCALE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


def validate_required_locales(value: Any) -> None:
    """A list of locale tags, or {channel or "*": [locale tags]}; anything else is refused on save."""
    groups = {"*": value} if isinstance(value, list) else value
    if not isinstance(groups, dict):
        raise ValidationError("Give a list of locales or an object {channel: [locales]}.")
    for channel, locales in groups.items():
        if channel != "*" and channel not in Channel.values:
            raise ValidationError(f"Unknown channel {channel!r} (use one of {', '.join(Channel.values)} or '*').")
        if not isinstance(locales, list) or not all(isinstance(x, str) and _LOCALE_TAG.fullmatch(x) for x in locales):
            raise ValidationError(f"{channel}: give a list of locale tags such as \"en-US\" or \"de\".")


class Tenant(models.Model):
    """Every key, recipient, template, preference and message belongs to exactly one tenant."""

    DEFAULT_SLUG = "default"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=dj_timezone.now)
    # Localization debt (issue 20): the locales every active template must carry, checked in CI by
    # `manage.py check_template_locales` and shown in the template admin's coverage table.
    required_locales = models.JSONField(default=dict, blank=True, validators=[validate_required_locales],
                                        help_text='Locales each active template must have, per channel: '
                                                  '{"*": ["en-US", "de"], "sms": ["es"]} ("*": every channel '
                                                  'the template uses); a plain list means every channel.')

    def __str__(self) -> str:
        return self.slug


class Scope(models.TextChoices):
    MESSAGES_SEND = "messages:send", "Send messages"
    MESSAGES_READ = "messages:read", "Read messages"
    ADMIN = "admin", "Everything, including recipients and configuration"


class ApiKey(models.Model):
    """A service's credential. Only a SHA-256 of the key is stored; the key is shown once.

    Keys are 256-bit random tokens, so a plain (unsalted) hash is enough: there is nothing to
    brute-force, and a fast hash keeps authentication off the request's critical path.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices), default=list)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class Recipient(models.Model):
    """A person (or system) messages are sent to, known by the calling app's own id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="recipients")
    external_id = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550123")
    locale = models.CharField(max_length=35, default="en-US")
    timezone = models.CharField(max_length=64, default="UTC")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="recipient_unique_external_id"),
        ]
        indexes = [models.Index(fields=["tenant", "email"]), models.Index(fields=["tenant", "phone"])]

    def __str__(self) -> str:
        return self.external_id


class Device(models.Model):
    """A push token of a recipient's app install (FCM; APNs through FCM; web push)."""

    class Platform(models.TextChoices):
        ANDROID = "android"
        IOS = "ios"
        WEB = "web"
        # A browser's Web Push subscription (RFC 8030): the token is the push service endpoint URL and
        # keys_encrypted holds its p256dh/auth (RFC 8291), encrypted at rest (comms.crypto).
        WEBPUSH = "webpush"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    token = models.CharField(max_length=4096)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    app_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_seen_at = models.DateTimeField(default=dj_timezone.now)
    disabled_at = models.DateTimeField(null=True, blank=True, help_text="Set when the push service reports the token invalid.")
    disabled_reason = models.CharField(max_length=200, blank=True)
    keys_encrypted = models.TextField(blank=True, default="", help_text="Web Push only: p256dh and auth, encrypted.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "token"], name="device_unique_token")]

    def __str__(self) -> str:
        return f"{self.platform}:{self.token[:12]}…"



class AuditEntry(models.Model):
    """Who did what to which object, with the change and why. A trigger refuses UPDATE/DELETE.

    Written only by ``comms.audit.audit_record``, called by the service that changes the state. The
    table keeps the name it had when the console owned it (the move was state-only, comms 0008).
    """

    at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    # No database constraint and no cascade: the trail outlives users and tenants (the label stays).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              related_name="+", db_constraint=False)
    actor_label = models.CharField(max_length=200, help_text="User name or API key prefix, kept if the user goes.")
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
                               db_constraint=False)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=255, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "admin_console_auditentry"
        verbose_name_plural = "audit entries"
        ordering = ["-at"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="admin_conso_target__eebac3_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"


class TenantQuota(models.Model):
    """A tenant's plan and its own overrides of the plan's limits (seed 002: "tenant budgets,
    configurable per plan"). Plans are named in COMMS_TENANT_PLANS; an empty field here takes the
    plan's value, and a tenant without a row is on COMMS_TENANT_DEFAULT_PLAN. Limits are read
    through comms.quotas (cached for COMMS_TENANT_QUOTA_CACHE_SECONDS)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="quota", primary_key=True)
    plan = models.CharField(max_length=64, blank=True, help_text="A plan of COMMS_TENANT_PLANS (empty: the default plan).")
    weight = models.PositiveSmallIntegerField(null=True, blank=True,
                                              help_text="Share of each priority's claim relative to other tenants.")
    api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_bulk_size = models.PositiveIntegerField(null=True, blank=True, help_text="Recipients per bulk call.")
    daily_messages = models.JSONField(default=dict, blank=True,
                                      help_text='Messages per UTC day per channel, e.g. {"email": 100000, "sms": 5000}.')
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quota of {self.tenant_id}"
class RetentionPolicy(models.Model):
    """How many days one kind of data is kept: for one tenant, or for everyone (tenant empty).

    A tenant's row beats the deployment-wide row, which beats ``comms.retention_policy.DEFAULT_DAYS``.
    Set through ``comms.services.retention_policy_set`` (validated: minimum per kind, never consent)."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               help_text="Empty: the deployment-wide default for this kind.")
    kind = models.CharField(max_length=16, choices=RetentionKind.choices)
    days = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind"], name="retention_policy_tenant_kind"),
            models.UniqueConstraint(fields=["kind"], condition=models.Q(tenant__isnull=True),
                                    name="retention_policy_global_kind"),
        ]

    def clean(self) -> None:
        """The admin form's check: the same typed rule the service applies, as a field error."""
        try:
            retention_days_validate(kind=self.kind, days=self.days)
        except CommsError as exc:
            raise ValidationError({"days": f"{exc.code}: {exc.message}"}) from exc

    def __str__(self) -> str:
        return f"{self.kind}: {self.days} d ({self.tenant or 'everyone'})"


class RetentionRun(models.Model):
    """One kind's part of one retention run: what was removed and archived, or why it stopped."""

    kind = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, default="running", help_text="running, ok or failed")
    dry_run = models.BooleanField(default=False)
    removed = models.BigIntegerField(default=0, help_text="Rows of the kind's table (dry run: rows that would go).")
    children_removed = models.JSONField(default=dict, blank=True, help_text="Rows of child tables, per table.")
    archived = models.BigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    archived_to = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "-started_at"], name="retention_run_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M} {self.status}"
