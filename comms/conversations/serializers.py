"""Request shapes of the conversation API (unknown fields refused, JSON types enforced)."""

from __future__ import annotations

from rest_framework import serializers

from comms.conversations.models import Conversation, Participant
from comms.serializers import StrictSerializer


class ParticipantInSerializer(StrictSerializer):
    """One of recipient_id (the directory's external id) or staff_username."""

    recipient_id = serializers.CharField(max_length=255, required=False)
    staff_username = serializers.CharField(max_length=150, required=False)
    role = serializers.ChoiceField(choices=Participant.Role.choices, default=Participant.Role.MEMBER)
    display_name = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        if bool(attrs.get("recipient_id")) == bool(attrs.get("staff_username")):
            raise serializers.ValidationError("Give exactly one of recipient_id or staff_username.")
        return attrs


class ConversationCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Conversation.Kind.choices, default=Conversation.Kind.DIRECT)
    subject = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    metadata = serializers.DictField(required=False, default=dict)
    participants = ParticipantInSerializer(many=True, required=False, default=list)

    def validate_participants(self, value):
        if len(value) > 500:
            raise serializers.ValidationError("At most 500 participants at creation.")
        return value


class ActingSerializer(StrictSerializer):
    """API keys name the participant they act for; an inbox token acts as its own."""

    participant_id = serializers.CharField(max_length=64, required=False)
    recipient_id = serializers.CharField(max_length=255, required=False)


class MessagePostSerializer(ActingSerializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)
    reply_to = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    client_key = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    # Uploads made through POST /conversations/{id}/attachments by the same participant.
    attachment_ids = serializers.ListField(child=serializers.UUIDField(), required=False, default=list,
                                           max_length=10)


class MessageEditSerializer(ActingSerializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class ReadSerializer(ActingSerializer):
    index = serializers.IntegerField(min_value=0, max_value=2_147_483_647)
