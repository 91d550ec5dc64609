"""Conversations across channels, outbound: a posted message reaches SMS- and email-bound participants
through the one send pipeline (preferences, quiet hours, suppression and STOP all apply there).

Each (conversation message, participant) pair is one delivery.Message with the idempotency key
``conv:<message id>:<participant id>``, so a retried fan-out never sends twice; its id is kept on the
participant's Receipt, and the outbound message's status becomes the receipt's ``delivered_at``
(``receipts_refresh``, read through delivery's selectors; delivery never calls up into us).

Email replies thread: every outbound mail has the conversation's reply-to address
``conv+<reply_token>@COMMS_INBOUND_EMAIL_DOMAIN`` and ``In-Reply-To``/``References`` naming the
conversation's root Message-ID (RFC 5322 section 3.6.4), so mail clients keep one thread and a reply
comes back to the inbound routes with the token that finds the conversation.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from comms import errors
from comms.conversations.events import broadcast_on_commit
from comms.conversations.models import Conversation, ConversationMessage, Participant, Receipt
from delivery import selectors as delivery_selectors
from delivery.services import SendSpec, message_enqueue

log = logging.getLogger(__name__)

SMS_MAX_CHARS = 1000  # a long conversation message is cut (about 7 concatenated segments)


def reply_address(conversation: Conversation) -> str:
    """The per-conversation reply-to address an email participant answers to."""
    return f"conv+{conversation.reply_token}@{settings.COMMS_INBOUND_EMAIL_DOMAIN}"


def thread_root_id(conversation: Conversation) -> str:
    """The Message-ID every mail of the conversation refers to (In-Reply-To / References)."""
    return f"<conv.{conversation.pk}@{settings.COMMS_MESSAGE_ID_DOMAIN}>"


def message_fanout_hook(*, message_id: Any) -> None:
    """The default COMMS_CONVERSATION_MESSAGE_HOOKS entry: services.message_post calls it on commit for
    every message (REST API, WebSocket, admin staff reply, inbound SMS/email), so each reaches the
    SMS/email participants exactly once (one idempotency key per message and participant).

    A failure is logged, never raised: the message is committed and the poster must not see an error
    for it (the hook runs after the commit); a retried fan-out is harmless.
    """
    message = (ConversationMessage.objects.select_related("conversation__tenant", "sender__recipient",
                                                          "sender__staff_user")
               .filter(pk=message_id).first())
    if message is None or message.deleted_at is not None:
        return
    try:
        conversation_message_fanout(message=message)
    except Exception:  # noqa: BLE001 - logged with its traceback; the posted message stands
        log.exception("fan-out of conversation message %s failed", message_id)


def _sender_name(message: ConversationMessage) -> str:
    sender = message.sender
    if sender is None:
        return "comms"
    if sender.display_name:
        return sender.display_name
    if sender.recipient_id and sender.recipient is not None:
        return sender.recipient.external_id
    if sender.staff_user_id and sender.staff_user is not None:
        return sender.staff_user.get_full_name() or sender.staff_user.get_username()
    return sender.address or "participant"


def _spec_for(message: ConversationMessage, participant: Participant) -> SendSpec:
    conversation = message.conversation
    name = _sender_name(message)
    meta: dict[str, Any] = {"conversation_id": str(conversation.pk), "conversation_message_id": str(message.pk),
                            "participant_id": str(participant.pk)}
    common = {"category": settings.COMMS_CONVERSATIONS_CATEGORY, "priority": settings.COMMS_CONVERSATIONS_PRIORITY,
              "recipient_id": participant.recipient.external_id if participant.recipient_id else ""}
    if participant.binding == Participant.Binding.SMS:
        text = f"{name}: {message.body}"
        if len(text) > SMS_MAX_CHARS:
            text = text[:SMS_MAX_CHARS - 1] + "…"
        return SendSpec(channel="sms", to=participant.address, body=text, metadata=meta, **common)
    subject = conversation.subject or "New message"
    body = f"{name} wrote:\n\n{message.body}\n\n-- \nReply to this email to answer in the conversation."
    body_html = (f"<p><strong>{html.escape(name)}</strong> wrote:</p><div>{message.body_html}</div>"
                 "<p style=\"color:#666\">Reply to this email to answer in the conversation.</p>")
    meta.update(reply_to=reply_address(conversation),
                email_headers={"In-Reply-To": thread_root_id(conversation),
                               "References": thread_root_id(conversation)})
    return SendSpec(channel="email", to=participant.address, subject=f"Re: {subject}"[:200], body=body,
                    body_html=body_html, metadata=meta, **common)


def conversation_message_fanout(*, message: ConversationMessage) -> list[Receipt]:
    """Send `message` to every other active SMS/email participant; their receipts (with the outbound id).

    A participant the pipeline refuses (suppressed, opted out, STOP) gets a receipt without an
    outbound message: nothing is sent, and the conversation message itself stands.
    """
    receipts = []
    others = (Participant.objects.select_related("recipient")
              .filter(conversation_id=message.conversation_id, left_at__isnull=True,
                      binding__in=[Participant.Binding.SMS, Participant.Binding.EMAIL])
              .exclude(address=""))
    if message.sender_id:
        others = others.exclude(pk=message.sender_id)
    for participant in others:
        outbound_id = None
        try:
            with transaction.atomic():
                outbound, _ = message_enqueue(tenant=message.conversation.tenant,
                                              spec=_spec_for(message, participant),
                                              idempotency_key=f"conv:{message.pk}:{participant.pk}")
            outbound_id = outbound.pk
        except errors.CommsError as exc:
            log.info("conversation %s #%s not sent to %s: %s", message.conversation_id, message.index,
                     participant.pk, exc.code)
        receipt, _ = Receipt.objects.get_or_create(message=message, participant=participant)
        if outbound_id and receipt.outbound_message_id != outbound_id:
            receipt.outbound_message_id = outbound_id
            receipt.save(update_fields=["outbound_message_id"])
        receipts.append(receipt)
    return receipts


def receipts_refresh(*, limit: int = 2000) -> int:
    """Turn delivered outbound SMS/email messages into delivered receipts (beat); rows updated."""
    pending = list(Receipt.objects.filter(outbound_message_id__isnull=False, delivered_at__isnull=True)
                   .order_by("id").values_list("id", "outbound_message_id")[:limit])
    if not pending:
        return 0
    delivered = delivery_selectors.delivered_times(message_ids=[mid for _, mid in pending])
    done = 0
    for receipt_id, message_id in pending:
        at = delivered.get(message_id)
        if at is not None:
            done += Receipt.objects.filter(pk=receipt_id, delivered_at__isnull=True).update(delivered_at=at)
    return done


def participant_mark_read(*, participant: Participant, index: int) -> None:
    """Move a participant's read horizon forward (never back): an inbound reply reads everything before it."""
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk, last_read_index__lt=index).update(last_read_index=index)
    # Answering proves the earlier messages arrived: read implies delivered.
    Receipt.objects.filter(participant=participant, message__index__lte=index, read_at__isnull=True).update(
        read_at=now, delivered_at=Coalesce(F("delivered_at"), Value(now)))
    # In-app clients see the channel participant's read horizon move like anyone else's.
    broadcast_on_commit(participant.conversation_id, {
        "type": "receipt", "kind": "read", "conversation_id": str(participant.conversation_id),
        "participant_id": str(participant.id), "index": index})
