from django.apps import AppConfig

from comms.erasure import Phase, eraser_register  # no models: safe before the registry is ready


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
