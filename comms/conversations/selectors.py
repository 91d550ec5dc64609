"""Read queries for conversations: access (who may see what), pages of messages, unread counts."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from comms.conversations import errors
from comms.conversations.models import Conversation, ConversationMessage, Participant
from comms.models import Recipient, Tenant

MAX_PAGE = 100


def _uuid(raw: Any, exc: type[Exception]) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise exc() from None


def conversation_get(*, tenant: Tenant, conversation_id: Any) -> Conversation:
    """Unknown ids and other tenants' conversations raise the same 404."""
    found = Conversation.objects.filter(tenant=tenant, pk=_uuid(conversation_id, errors.ConversationNotFound)).first()
    if found is None:
        raise errors.ConversationNotFound()
    return found


def participant_of(*, conversation: Conversation, recipient: Recipient) -> Participant:
    """The recipient's active participant, or 403 (the conversation exists in their tenant)."""
    found = Participant.objects.filter(conversation=conversation, recipient=recipient, left_at__isnull=True).first()
    if found is None:
        raise errors.NotParticipant()
    return found


def participant_get(*, conversation: Conversation, participant_id: Any = None,
                    recipient_external_id: str | None = None, active: bool = True) -> Participant:
    """A participant named by id or by the recipient's external id (how a service acts for one)."""
    qs = Participant.objects.filter(conversation=conversation).select_related("recipient", "staff_user")
    if active:
        qs = qs.filter(left_at__isnull=True)
    if participant_id:
        qs = qs.filter(pk=_uuid(participant_id, errors.ParticipantNotFound))
    elif recipient_external_id:
        qs = qs.filter(recipient__external_id=recipient_external_id)
    else:
        raise errors.ActingParticipantRequired()
    found = qs.order_by("-joined_at").first()
    if found is None:
        raise errors.ParticipantNotFound()
    return found


def participants(*, conversation: Conversation, include_left: bool = True) -> list[Participant]:
    qs = Participant.objects.filter(conversation=conversation).select_related("recipient", "staff_user")
    if not include_left:
        qs = qs.filter(left_at__isnull=True)
    return list(qs.order_by("joined_at", "id"))


def unread_count(*, participant: Participant) -> int:
    return ConversationMessage.objects.filter(
        conversation_id=participant.conversation_id, index__gt=participant.last_read_index, deleted_at__isnull=True,
    ).exclude(sender=participant).count()


def unread_counts(*, conversation: Conversation) -> dict[str, int]:
    """Per active participant: messages past their read horizon, not their own, not deleted."""
    return {str(p.id): unread_count(participant=p) for p in participants(conversation=conversation,
                                                                             include_left=False)}


def conversations_for_tenant(*, tenant: Tenant, recipient_external_id: str | None = None,
                             state: str | None = None) -> QuerySet[Conversation]:
    qs = Conversation.objects.filter(tenant=tenant)
    if recipient_external_id:
        qs = qs.filter(participants__recipient__external_id=recipient_external_id,
                       participants__left_at__isnull=True)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-updated_at", "-id").distinct()


def conversations_for_recipient(*, recipient: Recipient, state: str | None = None) -> QuerySet[Conversation]:
    """The recipient's conversations with their unread count (one query)."""
    # Nested subquery: OuterRef(OuterRef) reaches the conversation row from inside the message count.
    mine = Participant.objects.filter(conversation=OuterRef(OuterRef("pk")), recipient=recipient,
                                      left_at__isnull=True)
    unread = (ConversationMessage.objects.filter(conversation=OuterRef("pk"), deleted_at__isnull=True,
                                                 index__gt=Subquery(mine.values("last_read_index")[:1]))
              .exclude(sender_id=Subquery(mine.values("id")[:1]))
              .order_by().values("conversation").annotate(n=Count("id")).values("n"))
    qs = Conversation.objects.filter(tenant_id=recipient.tenant_id, participants__recipient=recipient,
                                     participants__left_at__isnull=True)
    if state:
        qs = qs.filter(state=state)
    return qs.annotate(unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0))).order_by(
        "-updated_at", "-id")


def recipient_memberships(*, recipient_id: Any) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(conversation id, participant id) of every conversation the recipient takes part in (WebSocket groups)."""
    return list(Participant.objects.filter(recipient_id=recipient_id, left_at__isnull=True).values_list(
        "conversation_id", "id"))


def cursor(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    if not str(raw).isdigit() or len(str(raw)) > 10:
        raise errors.BadCursor(details={"value": str(raw)[:40]})
    return int(raw)


def messages_page(*, conversation: Conversation, after: int | None = None, before: int | None = None,
                  limit: int = 50) -> tuple[list[ConversationMessage], bool]:
    """Messages in index order. `after=n`: the next ones after n (catch up); `before=n`: the ones just
    before n (scroll back); neither: the latest. Returns (page, more exist in that direction)."""
    limit = max(1, min(limit, MAX_PAGE))
    qs = ConversationMessage.objects.filter(conversation=conversation).select_related(
        "sender__recipient", "sender__staff_user", "reply_to").prefetch_related("attachments")
    if after is not None:
        qs = qs.filter(index__gt=after)
        if before is not None:
            qs = qs.filter(index__lt=before)
        rows = list(qs.order_by("index")[:limit + 1])
        return rows[:limit], len(rows) > limit
    if before is not None:
        qs = qs.filter(index__lt=before)
    rows = list(qs.order_by("-index")[:limit + 1])
    return list(reversed(rows[:limit])), len(rows) > limit


def message_get(*, tenant: Tenant, message_id: Any) -> ConversationMessage:
    found = (ConversationMessage.objects.select_related("conversation", "sender__recipient", "reply_to")
             .filter(tenant=tenant, pk=_uuid(message_id, errors.MessageNotFound)).first())
    if found is None:
        raise errors.MessageNotFound()
    return found


def active_filter() -> Q:
    return Q(left_at__isnull=True)
