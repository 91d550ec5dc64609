"""Preferences, consent and compliance: what a recipient agreed to, and who must never be contacted.

Everything here is read at send time by ``preferences.decision`` (EC-COM-020: a preference change
during a campaign applies to the rows not yet sent). Addresses on the suppression list are kept as
a keyed hash (what the decision looks up) plus an encrypted copy for the admin viewer, so a dump of
this table reveals no address.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from comms.crypto import decrypt_json, encrypt_json
from comms.enums import Channel


class Frequency(models.TextChoices):
    REALTIME = "realtime", "Real time"
    DAILY = "daily_digest", "Daily digest"
    WEEKLY = "weekly_digest", "Weekly digest"
    NEVER = "never", "Never"


class UpdatedBy(models.TextChoices):
    USER = "user"
    SYSTEM = "system"
    ADMIN = "admin"
    IMPORT = "import"


class NotificationCategory(models.Model):
    """A category of message with its default opt-in matrix (seed 001).

    Rows without a tenant are the built-in catalogue (migration 0002); a tenant row with the same
    key overrides it for that tenant.
    """

    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=32)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    critical = models.BooleanField(default=False, help_text="Bypasses opt-out and quiet hours (never a hard bounce).")
    marketing = models.BooleanField(default=False, help_text="Commercial: SMS needs express consent (TCPA), "
                                                             "08:00-21:00 local only.")
    double_opt_in = models.BooleanField(default=False, help_text="Email needs a confirmed subscription first.")
    defaults = models.JSONField(default=dict, help_text='Channel → enabled, e.g. {"email": true, "sms": false}.')
    respects_quiet_hours = models.BooleanField(default=True)
    quiet_start = models.TimeField(null=True, blank=True, help_text="Category override of the quiet window.")
    quiet_end = models.TimeField(null=True, blank=True)
    user_visible = models.BooleanField(default=True, help_text="Shown in the preference center.")
    order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        verbose_name_plural = "notification categories"
        ordering = ["order", "key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="category_unique_key_per_tenant"),
            models.UniqueConstraint(fields=["key"], condition=Q(tenant__isnull=True), name="category_unique_builtin"),
        ]

    def __str__(self) -> str:
        return self.key

    def default_for(self, channel: str) -> bool:
        return bool(self.defaults.get(channel, channel in (Channel.IN_APP, Channel.WEBHOOK)))


class UserPreference(models.Model):
    """A recipient's explicit choice for one channel × category (no row: the category default)."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="preferences")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    category = models.SlugField(max_length=32)
    enabled = models.BooleanField()
    frequency = models.CharField(max_length=16, choices=Frequency.choices, default=Frequency.REALTIME)
    updated_at = models.DateTimeField(default=dj_timezone.now)
    updated_by = models.CharField(max_length=8, choices=UpdatedBy.choices, default=UpdatedBy.USER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient", "channel", "category"],
                                               name="preference_unique")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.category}={'on' if self.enabled else 'off'}"


class QuietHours(models.Model):
    """A recipient's do-not-disturb window in their time zone (no row: 21:00-08:00 on SMS and push).

    ``category`` empty is the recipient's general window; a row with a category overrides it for
    that category. A window with start == end is refused (ambiguous: always or never).
    """

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="quiet_hours")
    category = models.SlugField(max_length=32, blank=True, default="")
    enabled = models.BooleanField(default=True)
    start = models.TimeField(default=dt.time(21, 0))
    end = models.TimeField(default=dt.time(8, 0))
    timezone = models.CharField(max_length=64, blank=True, help_text="Empty: the recipient's time zone.")
    channels = ArrayField(models.CharField(max_length=16), default=list, blank=True,
                          help_text="Channels it holds back; empty: SMS and push.")
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name_plural = "quiet hours"
        constraints = [
            models.UniqueConstraint(fields=["recipient", "category"], name="quiet_hours_unique"),
            models.CheckConstraint(condition=~Q(start=models.F("end")), name="quiet_hours_not_empty"),
        ]


class SubscriptionStatus(models.TextChoices):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"


class ChannelSubscription(models.Model):
    """Membership of a list (usually a marketing category) on a channel, with double opt-in state."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="subscriptions")
    list_id = models.SlugField(max_length=64)
    list_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    source = models.CharField(max_length=64, blank=True)
    subscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    double_opt_in_confirmed = models.BooleanField(default=False)
    double_opt_in_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(default=dj_timezone.now, help_text="When the pending request was made.")
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_reminder_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient", "list_id", "channel"],
                                               name="subscription_unique")]
        indexes = [models.Index(fields=["status", "requested_at"], condition=Q(status="pending"),
                                name="subscription_pending_idx")]


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"
    INVALID = "invalid"
    LEGAL = "legal"


# When one address is suppressed twice, the heavier reason stays (a hard bounce after an
# unsubscribe must also stop critical mail).
REASON_RANK = {
    SuppressionReason.UNSUBSCRIBE: 1, SuppressionReason.MANUAL: 2, SuppressionReason.COMPLAINT: 3,
    SuppressionReason.INVALID: 4, SuppressionReason.HARD_BOUNCE: 5, SuppressionReason.LEGAL: 6,
}


class Suppression(models.Model):
    """An address that must not be contacted on a channel, whoever the recipient is (EC-COM-017)."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the normalised address.")
    address_encrypted = models.TextField(blank=True, editable=False,
                                         help_text="Encrypted copy for the admin viewer; empty after an erasure.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Soft cases clear by themselves; counted "
                                                                       "from when we applied the entry, not from "
                                                                       "the provider's event time.")
    event_at = models.DateTimeField(null=True, blank=True, help_text="When the provider says the cause (bounce, "
                                                                     "complaint) happened; empty for our own entries.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "channel", "address_hash"],
                                               name="suppression_unique_address")]
        # The compliance report reads suppressions by creation time, for one tenant or all of them.
        indexes = [models.Index(fields=["created_at"], name="suppression_created_idx")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address_hash[:12]}… ({self.reason})"

    @property
    def address(self) -> str:
        return decrypt_json(self.address_encrypted) if self.address_encrypted else ""

    @address.setter
    def address(self, value: str) -> None:
        self.address_encrypted = encrypt_json(value) if value else ""


class ConsentAction(models.TextChoices):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class LegalBasis(models.TextChoices):
    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"


class ConsentRecord(models.Model):
    """One grant or withdrawal, never changed (a trigger refuses UPDATE and DELETE).

    The single exception is GDPR erasure (EC-COM-019): inside ``preferences.erasure`` a session flag
    lets the trigger pass an UPDATE that only blanks the identifying columns (recipient, IP, user
    agent); the record itself, its action, time, text and ``subject_hash`` stay.
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    recipient = models.ForeignKey("comms.Recipient", null=True, blank=True, on_delete=models.DO_NOTHING,
                                  related_name="+", db_constraint=False)
    subject_hash = models.CharField(max_length=64, help_text="Keyed hash of the recipient (or address) it concerns.")
    address_hash = models.CharField(max_length=64, blank=True, help_text="Keyed hash of the address, for SMS/email "
                                                                         "consent not tied to a directory entry.")
    channel = models.CharField(max_length=16, blank=True, help_text="Empty: every channel.")
    category = models.CharField(max_length=32, blank=True, help_text="Empty: every category.")
    action = models.CharField(max_length=16, choices=ConsentAction.choices)
    at = models.DateTimeField(default=dj_timezone.now)
    source = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    consent_text = models.TextField(blank=True)
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices, default=LegalBasis.CONSENT)
    erased_at = models.DateTimeField(null=True, blank=True)
    source_ref = models.CharField(max_length=128, blank=True, default="",
                                  help_text="What caused the record, when it has an id of its own (the provider's "
                                            "inbound message id, a hash of the unsubscribe token): a redelivery of "
                                            "the same cause writes no second row.")

    class Meta:
        constraints = [
            # One row per cause and subject: a redelivered STOP (same MessageSid) or a repeated RFC 8058
            # POST (same token) is a no-op (INSERT … ON CONFLICT DO NOTHING in preferences.consent).
            models.UniqueConstraint(fields=["tenant", "source_ref", "subject_hash"], condition=~Q(source_ref=""),
                                    name="consent_unique_source_ref"),
        ]
        indexes = [
            models.Index(fields=["tenant", "recipient", "id"], name="consent_recipient_idx"),
            models.Index(fields=["tenant", "address_hash", "id"], condition=~Q(address_hash=""),
                         name="consent_address_idx"),
            models.Index(fields=["tenant", "subject_hash"], name="consent_subject_idx"),
            # The compliance report reads the ledger by time (grants/withdrawals) and by erasure time.
            models.Index(fields=["at"], name="consent_at_idx"),
            models.Index(fields=["erased_at"], condition=Q(erased_at__isnull=False), name="consent_erased_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.channel or '*'}/{self.category or '*'} via {self.source}"
