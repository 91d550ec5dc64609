from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    """Two-way conversations (an upper package of comms): participants, messages, receipts, attachments.

    Its own app above delivery, preferences and webhooks: a participant bound to SMS or email is
    reached through the one send pipeline, and inbound replies arrive through the webhooks intake.
    """

    name = "comms.conversations"
    label = "conversations"
    verbose_name = "comms conversations"
