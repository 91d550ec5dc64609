"""Conversation use cases: each one transaction that writes its rows, its audit entry and (on commit)
its real-time event, so every caller — REST API, WebSocket, admin, inbound SMS/email — gets the same
side effects (the Zulip `do_*` shape).

`actor` is who is accountable in the audit log (a staff user, an API principal, or None for the
system); the acting *participant* (sender, editor, reader) is a separate argument.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from comms.audit import audit_record
from comms.errors import IdempotencyConflict, ValidationFailed
from comms.conversations import errors
from comms.conversations.attachments import attachments_attach
from comms.conversations.events import broadcast_on_commit, joined_on_commit
from comms.conversations.models import (
    Conversation, ConversationMessage, MessageRevision, Participant, Receipt,
)
from comms.conversations.present import message_json, participant_json
from comms.conversations.rendering import body_check, render
from comms.models import Recipient, Tenant


@dataclass(frozen=True)
class ParticipantSpec:
    """Who to add: a recipient of the directory or a staff user, with a role and an optional binding."""

    recipient: Recipient | None = None
    staff_user: Any = None
    role: str = Participant.Role.MEMBER
    display_name: str = ""
    binding: str = Participant.Binding.IN_APP
    address: str = ""


def _add(conversation: Conversation, spec: ParticipantSpec) -> Participant:
    if spec.recipient is not None and spec.recipient.tenant_id != conversation.tenant_id:
        raise errors.ParticipantNotFound("The recipient belongs to another tenant.")
    try:
        with transaction.atomic():
            participant = Participant.objects.create(
                tenant_id=conversation.tenant_id, conversation=conversation, recipient=spec.recipient,
                staff_user=spec.staff_user, role=spec.role, display_name=spec.display_name[:120],
                binding=spec.binding, address=spec.address)
    except IntegrityError:
        raise errors.ParticipantExists() from None
    if participant.recipient_id:
        joined_on_commit(participant.recipient_id, conversation.id)
    return participant


@transaction.atomic
def conversation_create(*, tenant: Tenant, kind: str = Conversation.Kind.DIRECT, subject: str = "",
                        metadata: dict | None = None, participants: Sequence[ParticipantSpec] = (),
                        actor: Any = None) -> Conversation:
    conversation = Conversation.objects.create(tenant=tenant, kind=kind, subject=subject[:200],
                                               metadata=metadata or {})
    for spec in participants:
        _add(conversation, spec)
    audit_record(actor=actor, action="conversation.create", target=conversation,
                 diff={"kind": kind, "participants": len(participants)})
    return conversation


@transaction.atomic
def participant_add(*, conversation: Conversation, spec: ParticipantSpec, actor: Any = None) -> Participant:
    participant = _add(conversation, spec)
    audit_record(actor=actor, action="conversation.participant.add", target=conversation,
                 diff={"participant": str(participant.id), "role": participant.role})
    broadcast_on_commit(conversation.id, {"type": "participant.joined", "conversation_id": str(conversation.id),
                                          "participant": participant_json(participant)})
    return participant


@transaction.atomic
def participant_remove(*, participant: Participant, actor: Any = None) -> Participant:
    """Leaving keeps the row (joined/left times, messages stay attributed); re-adding makes a new one."""
    if participant.left_at is None:
        participant.left_at = timezone.now()
        participant.save(update_fields=["left_at"])
        audit_record(actor=actor, action="conversation.participant.remove", target=participant.conversation,
                     diff={"participant": str(participant.id)})
        broadcast_on_commit(participant.conversation_id, {
            "type": "participant.left", "conversation_id": str(participant.conversation_id),
            "participant": participant_json(participant)})
    return participant


def _message_hooks(message_id: uuid.UUID) -> None:
    # Other features (SMS/email fan-out to bound participants, offline digests) register here instead
    # of editing message_post: COMMS_CONVERSATION_MESSAGE_HOOKS is a list of dotted paths f(message_id=…).
    for path in settings.COMMS_CONVERSATION_MESSAGE_HOOKS:
        import_string(path)(message_id=message_id)


def _same_post(existing: ConversationMessage, body: str, reply_to_id: uuid.UUID | None) -> bool:
    return existing.body == body and existing.reply_to_id == reply_to_id


@transaction.atomic
def message_post(*, conversation: Conversation, sender: Participant, body: str,
                 source: str = ConversationMessage.Source.IN_APP, reply_to_id: uuid.UUID | str | None = None,
                 client_key: str = "", attachment_ids: Sequence[uuid.UUID] = (),
                 actor: Any = None) -> tuple[ConversationMessage, bool]:
    """Post a message as `sender`; (message, created). The same client_key from the same sender with the
    same body answers the first message (created=False); with another body, 409.

    Inbound channels call this with `source="sms"`/`"email"`; the event and hooks fire on commit.
    """
    body = body_check(body)
    client_key = (client_key or "")[:255]
    reply_uuid = _uuid_or_none(reply_to_id)
    # The row lock numbers messages 1, 2, 3… without gaps and serialises duplicates of one client key.
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if sender.conversation_id != locked.pk or sender.left_at is not None:
        raise errors.NotParticipant()
    if client_key:
        existing = ConversationMessage.objects.filter(conversation=locked, sender=sender,
                                                      client_key=client_key).first()
        if existing is not None:
            if not _same_post(existing, body, reply_uuid):
                raise IdempotencyConflict("This client_key was already used with a different message.",
                                          details={"message_id": str(existing.id)})
            return existing, False
    if locked.state == Conversation.State.CLOSED:
        raise errors.ConversationClosed()
    if not body and not attachment_ids:
        raise ValidationFailed("A message needs a body or an attachment.")
    reply_to = None
    if reply_to_id is not None:
        reply_to = ConversationMessage.objects.filter(pk=reply_uuid, conversation=locked).first() if reply_uuid else None
        if reply_to is None:
            raise errors.ReplyOutsideConversation(details={"reply_to": str(reply_to_id)})
    html = render(body) if body else ""
    locked.last_index += 1
    locked.save(update_fields=["last_index", "updated_at"])
    message = ConversationMessage.objects.create(
        tenant_id=locked.tenant_id, conversation=locked, index=locked.last_index, sender=sender, source=source,
        body=body, body_html=html, reply_to=reply_to, client_key=client_key)
    if attachment_ids:
        # Only the sender's own unattached uploads of this conversation; any other id is a typed 400
        # and, inside this transaction, posts nothing.
        attachments_attach(message=message, attachment_ids=list(attachment_ids), uploader=sender)
    # The sender has read their own message.
    Participant.objects.filter(pk=sender.pk, last_read_index__lt=message.index).update(last_read_index=message.index)
    sender.last_read_index = max(sender.last_read_index, message.index)
    conversation.last_index = locked.last_index
    event = {"type": "message.created", "message": message_json(message, sender=sender)}
    broadcast_on_commit(locked.id, event)
    transaction.on_commit(lambda: _message_hooks(message.id))
    return message, True


def _uuid_or_none(raw: Any) -> uuid.UUID | None:
    if raw is None or isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def _lock_message(message: ConversationMessage) -> ConversationMessage:
    # Lock only the message row (FOR UPDATE OF self): the joined sender/reply rows may be NULL.
    return (ConversationMessage.objects.select_for_update(of=("self",))
            .select_related("sender__recipient", "reply_to").get(pk=message.pk))


@transaction.atomic
def message_edit(*, message: ConversationMessage, editor: Participant, body: str,
                 actor: Any = None) -> ConversationMessage:
    """Only the sender edits; the previous body goes to a MessageRevision and the audit log."""
    body = body_check(body)
    message = _lock_message(message)
    if editor.pk != message.sender_id:
        raise errors.NotSender()
    if message.deleted_at is not None:
        raise errors.MessageDeleted()
    if not body:
        raise ValidationFailed("An edit needs a body; delete the message instead.")
    if body == message.body:
        return message
    revision = MessageRevision.objects.create(message=message, action=MessageRevision.Action.EDIT, editor=editor,
                                              previous_body=message.body)
    message.body, message.body_html, message.edited_at = body, render(body), timezone.now()
    message.save(update_fields=["body", "body_html", "edited_at"])
    # The previous body lives in the revision, not in the append-only audit log: GDPR erasure can
    # delete a revision, never an audit entry.
    audit_record(actor=actor if actor is not None else editor, action="conversation.message.edit", target=message,
                 tenant=message.tenant, diff={"index": message.index, "revision": revision.pk})
    broadcast_on_commit(message.conversation_id, {"type": "message.edited", "message": message_json(message)})
    return message


@transaction.atomic
def message_delete(*, message: ConversationMessage, editor: Participant | None, staff_user: Any = None,
                   actor: Any = None) -> ConversationMessage:
    """The sender, an agent participant, or a staff user (admin) deletes: a tombstone. The body stays in
    the revision (who, when, what) until GDPR erasure; the API shows it blank."""
    message = _lock_message(message)
    allowed = staff_user is not None or (editor is not None and (
        editor.pk == message.sender_id or editor.role == Participant.Role.AGENT))
    if not allowed:
        raise errors.NotSender("Only the sender or a support agent may delete this message.")
    if message.deleted_at is not None:
        return message
    MessageRevision.objects.create(message=message, action=MessageRevision.Action.DELETE, editor=editor,
                                   previous_body=message.body)
    message.deleted_at = timezone.now()
    message.save(update_fields=["deleted_at"])
    who = actor if actor is not None else (staff_user or editor)
    audit_record(actor=who, action="conversation.message.delete", target=message, tenant=message.tenant,
                 diff={"index": message.index})
    broadcast_on_commit(message.conversation_id, {"type": "message.deleted", "message": message_json(message)})
    return message


@transaction.atomic
def read_horizon_set(*, participant: Participant, index: int) -> Participant:
    """Mark everything up to `index` read (Twilio's read horizon). It only moves forward, and never past
    the last message."""
    conversation = Conversation.objects.get(pk=participant.conversation_id)
    index = max(0, min(int(index), conversation.last_index))
    moved = Participant.objects.filter(pk=participant.pk, last_read_index__lt=index).update(last_read_index=index)
    if moved:
        now = timezone.now()
        Receipt.objects.filter(participant=participant, message__index__lte=index, read_at__isnull=True).update(
            read_at=now)
        participant.last_read_index = index
        broadcast_on_commit(conversation.id, {"type": "receipt", "kind": "read", "conversation_id": str(conversation.id),
                                              "participant_id": str(participant.id), "index": index})
    else:
        participant.refresh_from_db(fields=["last_read_index"])
    return participant


@transaction.atomic
def receipt_delivered(*, participant: Participant, message_ids: Sequence[uuid.UUID | str]) -> list[str]:
    """A connected client (or a channel's delivery status) confirms messages reached the participant.
    Only messages of the participant's own conversation count; returns the ids newly marked."""
    ids = [u for u in (_uuid_or_none(i) for i in message_ids[:200]) if u is not None]
    found = list(ConversationMessage.objects.filter(pk__in=ids, conversation_id=participant.conversation_id)
                 .exclude(sender=participant).values_list("id", flat=True))
    if not found:
        return []
    now = timezone.now()
    existing = set(Receipt.objects.filter(participant=participant, message_id__in=found,
                                          delivered_at__isnull=False).values_list("message_id", flat=True))
    fresh = [m for m in found if m not in existing]
    Receipt.objects.bulk_create([Receipt(message_id=m, participant=participant, delivered_at=now) for m in fresh],
                                update_conflicts=True, unique_fields=["message", "participant"],
                                update_fields=["delivered_at"])
    if fresh:
        broadcast_on_commit(participant.conversation_id, {
            "type": "receipt", "kind": "delivered", "conversation_id": str(participant.conversation_id),
            "participant_id": str(participant.id), "message_ids": [str(m) for m in fresh]})
    return [str(m) for m in fresh]


@transaction.atomic
def conversation_close(*, conversation: Conversation, actor: Any = None) -> Conversation:
    updated = Conversation.objects.filter(pk=conversation.pk, state=Conversation.State.OPEN).update(
        state=Conversation.State.CLOSED, closed_at=timezone.now())
    conversation.refresh_from_db()
    if updated:
        audit_record(actor=actor, action="conversation.close", target=conversation)
        broadcast_on_commit(conversation.id, {"type": "conversation.closed", "conversation_id": str(conversation.id)})
    return conversation


@transaction.atomic
def staff_reply(*, conversation: Conversation, staff_user: Any, body: str, client_key: str = "") -> ConversationMessage:
    """Support staff answer from the admin: they join as an agent participant the first time."""
    participant = Participant.objects.filter(conversation=conversation, staff_user=staff_user,
                                             left_at__isnull=True).first()
    if participant is None:
        participant = _add(conversation, ParticipantSpec(staff_user=staff_user, role=Participant.Role.AGENT,
                                                         display_name=staff_user.get_full_name() or
                                                         staff_user.get_username()))
    message, _ = message_post(conversation=conversation, sender=participant, body=body,
                              source=ConversationMessage.Source.STAFF, client_key=client_key, actor=staff_user)
    audit_record(actor=staff_user, action="conversation.staff_reply", target=message, tenant=message.tenant,
                 diff={"index": message.index})
    return message


def presence_seen(*, participant_ids: Sequence[uuid.UUID], at: Any = None) -> None:
    """last_seen_at for a recipient's participants (on connect and on the last disconnect)."""
    Participant.objects.filter(pk__in=list(participant_ids)).update(last_seen_at=at or timezone.now())
