"""The shared vocabulary of comms: channels, priorities, categories and message statuses."""

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    IN_APP = "in_app", "In-app"
    WEBHOOK = "webhook", "Webhook"
    VOICE = "voice", "Voice"


class Priority(models.IntegerChoices):
    """P0 is never behind anything else: its own queue, its own worker pool, first in every claim.

    Labels name urgency only, matching the names `parse` accepts (emergency/critical, high, normal,
    low); what a message is about is its category (e.g. transactional), never its priority.
    """

    P0 = 0, "P0 emergency"
    P1 = 1, "P1 high"
    P2 = 2, "P2 normal"
    P3 = 3, "P3 low"
    P4 = 4, "P4 lowest"

    @classmethod
    def parse(cls, value: "str | int") -> "Priority":
        """Accept 0..4, "P0".."P4", the seed's names (critical/high/normal/low) and the labels' names."""
        aliases = {"critical": 0, "emergency": 0, "high": 1, "alert": 1, "normal": 2, "low": 3, "lowest": 4}
        if isinstance(value, str):
            key = value.strip().lower()
            if key in aliases:
                return cls(aliases[key])
            if key.startswith("p"):
                key = key[1:]
            value = int(key)
        return cls(int(value))


class Category(models.TextChoices):
    """Message categories of seed 000; preferences (issue 5) add the fine-grained catalogue."""

    TRANSACTIONAL = "transactional", "Transactional"
    MARKETING = "marketing", "Marketing"
    OPERATIONAL = "operational", "Operational"
    SYSTEM = "system", "System"
    SECURITY = "security", "Security"
    LEGAL = "legal", "Legal"
    # Seed 001's catalogue (preferences.NotificationCategory holds their rules and defaults).
    RECEIPTS = "receipts", "Receipts"
    BOOKING = "booking", "Booking"
    MESSAGES = "messages", "Messages"
    REVIEWS = "reviews", "Reviews"
    PROMOTIONS = "promotions", "Promotions"
    FINANCE = "finance", "Finance"


class Status(models.TextChoices):
    """Message lifecycle. Webhook-driven statuses only ever move forward (delivery.services.status)."""

    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead (DLQ)"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    CANCELLED = "cancelled", "Cancelled"


# States a message can still be cancelled from: nothing has been handed to a provider yet.
CANCELLABLE = (Status.SCHEDULED, Status.QUEUED, Status.DEFERRED)
# States that wait for a time to come (scheduled_for, quiet-hours end) before they are queued.
WAITING = (Status.SCHEDULED, Status.DEFERRED)
TERMINAL = (Status.FAILED, Status.DEAD, Status.CANCELLED, Status.BLOCKED)


class LogEvent(models.TextChoices):
    """DeliveryLog event types: seed 000 plus the engine's own bookkeeping events."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD = "dead"
    REQUEUED = "requeued"
    LEASE_EXPIRED = "lease_expired"
    CANCELLED = "cancelled"
    DEFERRED = "deferred"
    BLOCKED = "blocked"
    FALLBACK = "fallback"
