"""The conversations' typed errors (stable codes; the kernel's handler renders them as {code, message, details}).

They subclass the kernel's CommsError, so `comms.errors.status_for` and the API exception handler know them.
"""

from __future__ import annotations

from comms.errors import error_class as _error


# An unknown id and a conversation of another tenant answer the same 404 (no existence leak).
ConversationNotFound = _error("COMMS_CONVERSATION_NOT_FOUND", 404, "No such conversation.")
NotParticipant = _error("COMMS_NOT_PARTICIPANT", 403, "You are not a participant of this conversation.")
ParticipantNotFound = _error("COMMS_PARTICIPANT_NOT_FOUND", 404, "No such participant in this conversation.")
ParticipantExists = _error("COMMS_PARTICIPANT_EXISTS", 409, "This person already takes part in the conversation.")
ActingParticipantRequired = _error(
    "COMMS_ACTING_PARTICIPANT_REQUIRED", 400,
    "An API key acts for a participant: give participant_id or recipient_id.")
MessageNotFound = _error("COMMS_CONVERSATION_MESSAGE_NOT_FOUND", 404, "No such conversation message.")
NotSender = _error("COMMS_NOT_SENDER", 403, "Only the sender may change this message.")
MessageDeleted = _error("COMMS_MESSAGE_DELETED", 409, "The message was deleted.")
ReplyOutsideConversation = _error("COMMS_REPLY_OUTSIDE_CONVERSATION", 422,
                                  "reply_to names a message of another conversation (or none).")
ConversationClosed = _error("COMMS_CONVERSATION_CLOSED", 409, "The conversation is closed.")
BodyTooLarge = _error("COMMS_MESSAGE_TOO_LARGE", 400, "The message body is too long or too deeply nested.")
BadCursor = _error("COMMS_BAD_CURSOR", 400, "after/before must be a non-negative message index.")
