from django.apps import AppConfig

from comms.erasure import Phase, eraser_register  # no models: safe before the registry is ready
from comms.retention_policy import Child, Kind, Pruner, pruner_register

# Retention (comms.retention): a closed conversation, aged by when it closed, goes with its participants,
# messages, revisions and receipts (the foreign keys are deferred, so the order inside the batch's
# transaction does not matter). One with attachments is kept: their files live in the attachment
# storage, which only this app's services delete. Conversation ids are uuid4: no key bound.
CONVERSATIONS_PRUNER = Pruner(
    kind=Kind.CONVERSATIONS, table="conversations_conversation", key_is_ordered=False, time_sql="t.closed_at",
    removable_sql="t.state = 'closed' AND NOT EXISTS (SELECT 1 FROM conversations_attachment a "
                  "WHERE a.conversation_id = t.id)",
    children=(
        Child("conversations_messagerevision", "message_id", via="conversations_conversationmessage",
              via_column="conversation_id"),
        Child("conversations_receipt", "message_id", via="conversations_conversationmessage",
              via_column="conversation_id"),
        Child("conversations_conversationmessage", "conversation_id"),
        Child("conversations_participant", "conversation_id"),
    ),
)


class ConversationsConfig(AppConfig):
    """Two-way conversations (an upper package of comms): participants, messages, receipts, attachments.

    Its own app above delivery, preferences and webhooks: a participant bound to SMS or email is
    reached through the one send pipeline, and inbound replies arrive through the webhooks intake.
    """

    name = "comms.conversations"
    label = "conversations"
    verbose_name = "comms conversations"

    def ready(self) -> None:
        from comms.conversations.erasure import erase_conversation_data

        # GDPR erasure: the person's participations, messages and attachment files (RECORDS: they are
        # the person's primary records here, like delivery's messages).
        eraser_register(erase_conversation_data, phase=Phase.RECORDS)
        pruner_register(CONVERSATIONS_PRUNER)
