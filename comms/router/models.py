"""Models of the event router: routing rules (versioned), events, digests, escalations, schedules.

The tables keep the names they had when these models belonged to the kernel app (``comms_*``):
moving them to this app changed only Django's state (comms migration 0007, router 0001).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils import timezone as dj_timezone
from uuid_utils.compat import uuid7

from comms.enums import Category, Channel, Priority


class RoutingRule(models.Model):
    """Maps an event name to steps. The definition lives on immutable versions; one is active."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    event_name = models.CharField(max_length=128, help_text="e.g. booking.confirmed")
    description = models.TextField(blank=True)
    active_version = models.ForeignKey("RoutingRuleVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "comms_routingrule"
        constraints = [models.UniqueConstraint(fields=["tenant", "event_name"], name="routing_rule_unique_event")]

    def __str__(self) -> str:
        return self.event_name


class RoutingRuleVersion(models.Model):
    """One immutable, schema-validated definition of a rule; saving a change adds a version."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "comms_routingruleversion"
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="routing_rule_version_unique")]
        ordering = ["rule", "-version"]

    def __str__(self) -> str:
        return f"{self.rule.event_name} v{self.version}"


class Event(models.Model):
    """Every event received, routed or not (unrouted ones are kept for the admin to see)."""

    class State(models.TextChoices):
        ROUTED = "routed", "Routed"
        NO_ROUTE = "no_route", "No route"
        DUPLICATE = "duplicate", "Duplicate (dedupe window)"
        FAILED = "failed", "Nothing could be produced"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=128)
    cause_ref = models.CharField(max_length=255, blank=True)
    actor = models.JSONField(default=dict, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    audience = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P2)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ROUTED)
    rule_version = models.ForeignKey(RoutingRuleVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    outcome = models.JSONField(default=list, blank=True, help_text="Per step and recipient: what was produced, why.")
    produced = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "comms_event"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name", "cause_ref"], condition=~Q(cause_ref=""),
                                    name="event_unique_cause"),
        ]
        indexes = [models.Index(fields=["tenant", "state", "-created_at"], name="event_state_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.cause_ref or self.id})"


class Digest(models.Model):
    """Events collected for one recipient + digest key until due; rendered once as a summary."""

    class State(models.TextChoices):
        OPEN = "open", "Collecting"
        SENT = "sent", "Sent"
        EMPTY = "empty", "Empty (not sent)"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    template_key = models.CharField(max_length=128)
    channels = models.JSONField(default=list)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P3)
    cadence = models.CharField(max_length=16, blank=True, help_text="window | hourly | daily | weekly")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    failure = models.TextField(blank=True)

    class Meta:
        db_table = "comms_digest"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "recipient", "key"], condition=Q(state="open"),
                                    name="digest_one_open_per_key"),
        ]
        indexes = [models.Index(fields=["due_at"], condition=Q(state="open"), name="digest_due_idx")]

    def __str__(self) -> str:
        return f"{self.key} → {self.recipient_id} [{self.state}]"


class DigestItem(models.Model):
    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="items")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_key = models.CharField(max_length=255, help_text="One item per event and step, however often it arrives.")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "comms_digestitem"
        constraints = [models.UniqueConstraint(fields=["digest", "item_key"], name="digest_item_unique")]


class Escalation(models.Model):
    """'If the in-app item is still unread after N minutes, send on another channel.'"""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Escalated"
        RESOLVED = "resolved", "Read in time"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    message_id = models.UUIDField(unique=True, help_text="The message whose read state is watched.")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    channels = models.JSONField(default=list)
    template_key = models.CharField(max_length=128)
    variables = models.JSONField(default=dict)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.P2)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    escalated_message_id = models.UUIDField(null=True, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "comms_escalation"
        indexes = [models.Index(fields=["due_at"], condition=Q(state="pending"), name="escalation_due_idx")]


class Schedule(models.Model):
    """A stored send: once at a time, or recurring on a cron expression in a timezone.

    Each firing posts the stored event through the router with cause_ref ``schedule:<id>:<time>``,
    so a firing repeated by two beats produces its messages once.
    """

    class Kind(models.TextChoices):
        ONCE = "once", "One time"
        CRON = "cron", "Recurring (cron)"

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    cron = models.CharField(max_length=120, blank=True, help_text="Five fields, e.g. '0 9 * * 1' (Mondays 09:00).")
    timezone = models.CharField(max_length=64, default="UTC")
    run_at = models.DateTimeField(null=True, blank=True)
    event = models.JSONField(help_text="The event to post: {name, recipients|audience, payload, category, priority}.")
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        db_table = "comms_schedule"
        indexes = [models.Index(fields=["next_run_at"], condition=Q(cancelled_at__isnull=True),
                                name="schedule_due_idx")]

    def __str__(self) -> str:
        return self.name




class Journey(models.Model):
    """A multi-step flow per recipient. Its definition lives on immutable versions; one is active."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused (timers held)"
        ARCHIVED = "archived", "Archived (no new entries)"

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    active_version = models.ForeignKey("JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="journey_unique_key")]

    def __str__(self) -> str:
        return self.key


class JourneyVersion(models.Model):
    """One immutable, validated definition. ``entry_event``/``goal_events`` are copied out of it so an
    incoming event finds the journeys it enters or ends through an index."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    entry_event = models.CharField(max_length=128, blank=True)
    goal_events = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey", "version"], name="journey_version_unique")]
        indexes = [models.Index(fields=["entry_event"], condition=~Q(entry_event=""), name="journey_entry_idx")]
        ordering = ["journey", "-version"]

    def __str__(self) -> str:
        return f"{self.journey.key} v{self.version}"


class JourneyRun(models.Model):
    """One recipient's durable walk through one journey version.

    A live run is ``active`` (its next step is due at ``next_due_at``) or ``waiting`` (a timer at
    ``next_due_at``, and maybe an event ``waiting_for``). Workers claim due runs with SKIP LOCKED and a
    lease (``lease_owner``/``lease_until``); a lease that lapses (worker killed) makes the run due again.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        WAITING = "waiting", "Waiting"
        COMPLETED = "completed", "Completed (end of the graph)"
        EXITED = "exited", "Exited"
        CONVERTED = "converted", "Converted (goal reached)"
        FAILED = "failed", "Failed"

    LIVE = (State.ACTIVE, State.WAITING)

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="runs")
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    step = models.CharField(max_length=64, help_text="The step to run next (or the wait in progress).")
    seq = models.PositiveIntegerField(default=0, help_text="Steps executed so far; with the run id, the "
                                                           "idempotency key of the next one.")
    next_due_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(max_length=128, blank=True)
    wait_condition = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="entry payload, events received, messages.")
    entered_at = models.DateTimeField(default=timezone.now)
    exited_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=200, blank=True)
    path = models.JSONField(default=list, blank=True, help_text="Step ids in the order they ran.")

    class Meta:
        constraints = [
            # 'once at a time' (and the guard that two concurrent entries make one run).
            models.UniqueConstraint(fields=["journey", "recipient"], condition=Q(state__in=["active", "waiting"]),
                                    name="journey_run_one_live"),
        ]
        indexes = [
            models.Index(fields=["next_due_at"], condition=Q(state__in=["active", "waiting"]),
                         name="journey_run_due_idx"),
            models.Index(fields=["tenant", "recipient", "waiting_for"],
                         condition=Q(state="waiting") & ~Q(waiting_for=""), name="journey_run_waiting_idx"),
            models.Index(fields=["tenant", "recipient", "state"], name="journey_run_recipient_idx"),
            models.Index(fields=["journey", "state"], name="journey_run_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.recipient_id} [{self.state} @ {self.step}]"


class JourneyStep(models.Model):
    """One executed step of a run: the per-step counts and the per-recipient timeline read this.

    ``(run, seq)`` is unique, so a step retried after a crash cannot be recorded (or send) twice.
    """

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="steps")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    recipient = models.ForeignKey("comms.Recipient", on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.PositiveIntegerField()
    step = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)  # entry | send | wait | branch | update | exit | goal
    outcome = models.CharField(max_length=64, help_text="sent, blocked, capped, waiting, event, timeout, "
                                                        "branch target, converted, …")
    message_id = models.UUIDField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="journey_step_once")]
        indexes = [
            models.Index(fields=["journey", "version", "step", "outcome"], name="journey_step_count_idx"),
            models.Index(fields=["recipient", "at"], condition=Q(kind="send", outcome="sent"),
                         name="journey_step_cap_idx"),
        ]


__all__ = ["Channel", "Digest", "DigestItem", "Escalation", "Event", "Journey", "JourneyRun", "JourneyStep",
           "JourneyVersion", "RoutingRule", "RoutingRuleVersion", "Schedule"]
