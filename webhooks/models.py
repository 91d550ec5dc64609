"""WebhookEvent: every inbound provider request, stored raw before anything else happens.

One row per HTTP request (a SendGrid post carries a list of events; each becomes its own
tracking.MessageEvent, deduplicated on the provider's event id). The raw body is kept so a row
can be parsed again after a fix (the admin's "re-process" action) and so an auditor can see
exactly what the provider said, including requests whose signature did not verify.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookEvent(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received", "Received (waiting for processing)"
        PROCESSED = "processed", "Processed"
        RETRYING = "retrying", "Retrying (message not yet sent)"
        ORPHAN = "orphan", "Orphan (no matching message)"
        FLAGGED = "flagged", "Flagged (unknown event type)"
        MALFORMED = "malformed", "Malformed (signed, but not in the provider's format; answered 400)"
        FAILED = "failed", "Failed (processing error)"
        REJECTED = "rejected", "Rejected (invalid signature, never processed)"

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=32, help_text="sendgrid, mailgun, postmark, ses, twilio, twilio_sms, push")
    event_type = models.CharField(max_length=200, blank=True, help_text="The provider's own type(s) in this request.")
    provider_event_id = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True, help_text="The raw request body, exactly as received.")
    payload = models.JSONField(null=True, blank=True, help_text="Parsed body (JSON or form fields); null if malformed.")
    headers = models.JSONField(default=dict, blank=True, help_text="Headers needed for audit and re-verification.")
    url = models.CharField(max_length=2048, blank=True, help_text="The URL the provider signed (after proxy rules).")
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    signature_valid = models.BooleanField(null=True)
    signature_error = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    unknown = models.BooleanField(default=False, help_text="Holds an event type or format we do not know (EC-COM-025).")
    attempts = models.PositiveSmallIntegerField(default=0)
    events_total = models.PositiveIntegerField(default=0)
    events_applied = models.PositiveIntegerField(default=0)
    events_duplicate = models.PositiveIntegerField(default=0)
    events_orphan = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    message_id = models.UUIDField(null=True, blank=True, help_text="First matched internal message.")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["provider", "-received_at"], name="webhookevent_provider_idx"),
            # The sweeper's path: rows that still need work.
            models.Index(fields=["next_attempt_at"], condition=Q(state__in=["received", "retrying"]),
                         name="webhookevent_pending_idx"),
            models.Index(fields=["state", "-received_at"], name="webhookevent_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_type or '?'} #{self.pk} [{self.state}]"
