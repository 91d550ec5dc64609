"""One JSON shape per entity, shared by the REST API and the WebSocket events (a client parses one format)."""

from __future__ import annotations

from comms.conversations.attachments_api import attachment_brief
from comms.conversations.models import Conversation, ConversationMessage, Participant


def participant_json(p: Participant) -> dict:
    return {
        "id": str(p.id), "display_name": p.display_name or _identity(p), "role": p.role, "binding": p.binding,
        "recipient_id": p.recipient.external_id if p.recipient_id else None,
        "staff": p.staff_user_id is not None, "joined_at": p.joined_at, "left_at": p.left_at,
        "last_read_index": p.last_read_index, "last_seen_at": p.last_seen_at,
    }


def _identity(p: Participant) -> str:
    if p.recipient_id:
        return p.recipient.external_id
    return p.staff_user.get_username() if p.staff_user_id and p.staff_user else "staff"


def message_json(m: ConversationMessage, *, sender: Participant | None = None) -> dict:
    """A deleted message keeps its place (index, sender, time) with the body blanked: a tombstone."""
    sender = sender if sender is not None else m.sender
    deleted = m.deleted_at is not None
    return {
        "id": str(m.id), "conversation_id": str(m.conversation_id), "index": m.index,
        "sender": {"participant_id": str(sender.id), "display_name": sender.display_name or _identity(sender),
                   "recipient_id": sender.recipient.external_id if sender.recipient_id else None,
                   "staff": sender.staff_user_id is not None} if sender else None,
        "source": m.source, "body": "" if deleted else m.body, "body_html": "" if deleted else m.body_html,
        "reply_to": {"id": str(m.reply_to_id), "index": m.reply_to.index} if m.reply_to_id and m.reply_to else None,
        "client_key": m.client_key, "created_at": m.created_at, "edited_at": m.edited_at,
        "deleted": deleted, "deleted_at": m.deleted_at,
        # A tombstone carries no files either; ordered by upload so clients show them as sent.
        "attachments": [] if deleted else [attachment_brief(a) for a in
                                           sorted(m.attachments.all(), key=lambda a: (a.created_at, a.id))],
    }


def conversation_json(c: Conversation, *, participants: list[Participant] | None = None,
                      unread: int | None = None) -> dict:
    body = {
        "id": str(c.id), "kind": c.kind, "subject": c.subject, "metadata": c.metadata, "state": c.state,
        "last_index": c.last_index, "created_at": c.created_at, "updated_at": c.updated_at, "closed_at": c.closed_at,
    }
    if participants is not None:
        body["participants"] = [participant_json(p) for p in participants]
    if unread is not None:
        body["unread"] = unread
    return body
