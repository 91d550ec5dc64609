"""GDPR erasure (art. 17) of a person's part in conversations, run by the kernel's eraser registry.

The erased recipient's participations are removed — found by the directory link or, for a sender
known only by an SMS number or email address (an unknown sender's support conversation), by the
addresses the subject held. With them go the messages they sent (deleted outright, revisions
included: erasure is the one case where bodies are not tombstoned) and every attachment they
uploaded or that their messages carried, whose files are deleted from storage. Other participants'
messages stay; a reply to an erased message just loses its link (reply_to is SET_NULL).

The real-time side goes too: receipts and read horizons go with the participant rows (cascade),
and after the commit the person's WebSocket presence (the Redis sorted set of their live
connections and their entry in the sweep index) and their typing throttles are deleted. The audit
log keeps no message text (an edit's previous body is in its revision, deleted here).
"""

from __future__ import annotations

import logging
import re

from django.db import transaction
from django.db.models import Q
from redis.exceptions import RedisError

from comms.conversations.attachments import attachment_files_delete
from comms.conversations import presence
from comms.conversations.events import recipient_group, send_now
from comms.conversations.models import Attachment, ConversationMessage, MessageRevision, Participant, Receipt
from comms.erasure import ErasureSubject
from comms.redis import redis_client

log = logging.getLogger(__name__)


def _forget_realtime(recipient_id, participant_ids: list) -> None:
    """Presence and typing keys of the erased person (Redis is not in the transaction: after commit)."""
    keys = [f"comms:typing:{pid}" for pid in participant_ids]
    try:
        client = redis_client()
        if recipient_id is not None:
            keys.append(f"{presence.PREFIX}{recipient_id}")
            client.zrem(presence.INDEX, str(recipient_id))
        if keys:
            client.delete(*keys)
    except RedisError:  # the keys expire on their own (presence TTL, typing throttle)
        log.warning("erasure: Redis presence keys of recipient %s left to expire", recipient_id)
    if recipient_id is not None:  # their open sockets close (4401): nothing of theirs is left to follow
        send_now(recipient_group(recipient_id), {"reason": "erased"}, kind="conv.revoked")


def erase_conversation_data(*, subject: ErasureSubject) -> dict[str, int]:
    identifiers = [i.lower() for i in subject.identifiers if i]
    match = Q(recipient_id=subject.recipient_id)
    if identifiers:
        # Email addresses compare case-insensitively; numbers are stored normalised (E.164).
        match |= Q(binding__in=[Participant.Binding.SMS, Participant.Binding.EMAIL],
                   address__iregex=r"^(" + "|".join(re.escape(i) for i in identifiers) + r")$")
    participants = list(Participant.objects.filter(match, tenant_id=subject.tenant_id).values_list("pk", flat=True))
    transaction.on_commit(lambda: _forget_realtime(subject.recipient_id, participants))
    if not participants:
        return {}  # not in any conversation: nothing to report
    messages = ConversationMessage.objects.filter(sender_id__in=participants)
    attachments = list(Attachment.objects.filter(Q(uploaded_by_id__in=participants) | Q(message__in=messages)))
    files = attachment_files_delete(attachments)
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).delete()
    # Revisions hold previous bodies: those of the person's messages go with them (cascade), and
    # edits they made to others' messages lose the editor link only (their own text is not in them).
    MessageRevision.objects.filter(message__in=messages).delete()
    message_count, _ = messages.delete()
    receipts, _ = Receipt.objects.filter(participant_id__in=participants).delete()
    Participant.objects.filter(pk__in=participants).delete()
    return {"conversation_participants": len(participants), "conversation_messages": message_count,
            "conversation_attachments": len(attachments), "conversation_files": files,
            "conversation_receipts": receipts}
