"""Conversations: the model follows Twilio Conversations (participants bound to a channel address,
a per-participant read horizon, per-message receipts), inside one tenant."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from comms.models import Recipient, Tenant


def _reply_token() -> str:
    # The local part of the conversation's reply-to address (conv+<token>@…): unguessable, so a
    # forged reply cannot be posted into someone else's conversation by guessing an address.
    return secrets.token_urlsafe(18)


class Conversation(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"
        SUPPORT = "support"

    class State(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIRECT)
    subject = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    # Messages are numbered 1, 2, 3… per conversation; read horizons and receipts refer to the index.
    last_index = models.PositiveIntegerField(default=0)
    reply_token = models.CharField(max_length=40, unique=True, default=_reply_token, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-updated_at"], name="conv_tenant_updated")]

    def __str__(self) -> str:
        return self.subject or f"{self.kind} {str(self.pk)[:8]}"


class Participant(models.Model):
    """A recipient of the directory or a staff user, reached in-app or bound to an SMS/email address."""

    class Role(models.TextChoices):
        MEMBER = "member"
        OWNER = "owner"
        AGENT = "agent"  # support staff
        OBSERVER = "observer"

    class Binding(models.TextChoices):
        IN_APP = "in_app"
        SMS = "sms"
        EMAIL = "email"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="participants")
    recipient = models.ForeignKey(Recipient, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    display_name = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    binding = models.CharField(max_length=16, choices=Binding.choices, default=Binding.IN_APP)
    # E.164 number or email address when bound to SMS/email (the address replies come from).
    address = models.CharField(max_length=254, blank=True)
    joined_at = models.DateTimeField(default=dj_timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    last_read_index = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Offline notifications (bridge/offline.py): the highest message index already announced in an
    # email digest, and when, so a participant gets one digest per window and never one per message.
    notified_index = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # An unknown SMS/email sender routed to a support conversation has only its channel address.
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | Q(staff_user__isnull=False) | ~Q(address=""),
                name="participant_has_identity"),
            models.UniqueConstraint(fields=["conversation", "recipient"], condition=Q(left_at__isnull=True),
                                    name="participant_active_recipient_once"),
            models.UniqueConstraint(fields=["conversation", "staff_user"], condition=Q(left_at__isnull=True),
                                    name="participant_active_staff_once"),
        ]
        indexes = [
            models.Index(fields=["tenant", "recipient"], name="participant_recipient"),
            models.Index(fields=["tenant", "binding", "address"], name="participant_binding_address"),
        ]

    def __str__(self) -> str:
        return self.display_name or str(self.recipient_id or self.staff_user_id)


class ConversationMessage(models.Model):
    class Source(models.TextChoices):
        IN_APP = "in_app"
        SMS = "sms"
        EMAIL = "email"
        STAFF = "staff"
        SYSTEM = "system"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    index = models.PositiveIntegerField()
    sender = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IN_APP)
    body = models.TextField(blank=True, help_text="The sender's Markdown source.")
    body_html = models.TextField(blank=True, help_text="Rendered and sanitised server-side.")
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    client_key = models.CharField(max_length=255, blank=True, help_text="The client's idempotency key.")
    created_at = models.DateTimeField(default=dj_timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Tombstoned: the body is kept in revisions.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="convmsg_unique_index"),
            models.UniqueConstraint(fields=["conversation", "sender", "client_key"], condition=~Q(client_key=""),
                                    name="convmsg_unique_client_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.index}"


class MessageRevision(models.Model):
    """The audit trail of edits and deletes: who, when, and the body before the change."""

    class Action(models.TextChoices):
        EDIT = "edit"
        DELETE = "delete"

    message = models.ForeignKey(ConversationMessage, on_delete=models.CASCADE, related_name="revisions")
    action = models.CharField(max_length=16, choices=Action.choices)
    editor = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    previous_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)


class Receipt(models.Model):
    """Per message and participant: delivered (to the client or the channel) and read."""

    message = models.ForeignKey(ConversationMessage, on_delete=models.CASCADE, related_name="receipts")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="receipts")
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The outbound delivery.Message when the participant is bound to SMS/email (no FK: delivery is below us
    # but owns its table's lifecycle; the id is enough to follow status).
    outbound_message_id = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "participant"], name="receipt_unique")]


class Attachment(models.Model):
    """A file in a conversation: type and size checked on content; served only through signed links."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    # Uploaded first, attached when the message is posted (or by the inbound channel that carried it).
    message = models.ForeignKey(ConversationMessage, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="attachments")
    uploaded_by = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to="attachments/%Y/%m/%d/", max_length=300)
    thumbnail = models.FileField(upload_to="attachments/thumbs/%Y/%m/%d/", max_length=300, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, help_text="Detected from the bytes, not the name.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
