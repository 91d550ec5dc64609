"""GDPR erasure (art. 17) of a person's part in conversations, run by the kernel's eraser registry.

The erased recipient's participations are removed — found by the directory link or, for a sender
known only by an SMS number or email address (an unknown sender's support conversation), by the
addresses the subject held. With them go the messages they sent (deleted outright, revisions
included: erasure is the one case where bodies are not tombstoned) and every attachment they
uploaded or that their messages carried, whose files are deleted from storage. Other participants'
messages stay; a reply to an erased message just loses its link (reply_to is SET_NULL).
"""

from __future__ import annotations

import re

from django.db.models import Q

from comms.conversations.attachments import attachment_files_delete
from comms.conversations.models import Attachment, ConversationMessage, MessageRevision, Participant
from comms.erasure import ErasureSubject


def erase_conversation_data(*, subject: ErasureSubject) -> dict[str, int]:
    identifiers = [i.lower() for i in subject.identifiers if i]
    match = Q(recipient_id=subject.recipient_id)
    if identifiers:
        # Email addresses compare case-insensitively; numbers are stored normalised (E.164).
        match |= Q(binding__in=[Participant.Binding.SMS, Participant.Binding.EMAIL],
                   address__iregex=r"^(" + "|".join(re.escape(i) for i in identifiers) + r")$")
    participants = list(Participant.objects.filter(match, tenant_id=subject.tenant_id).values_list("pk", flat=True))
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
    Participant.objects.filter(pk__in=participants).delete()
    return {"conversation_participants": len(participants), "conversation_messages": message_count,
            "conversation_attachments": len(attachments), "conversation_files": files}
