"""Routes of conversations under /api/v1/: the core API and attachments (upload, link, signed download)."""

from django.urls import path

from comms.conversations import api
from comms.conversations.attachments_api import AttachmentLinkApi, AttachmentUploadApi, attachment_download

# conversations/messages/<id> has two segments after the prefix, conversations/<id> one: they cannot clash.
urlpatterns = [
    path("conversations", api.ConversationListApi.as_view(), name="conversations"),
    path("conversations/messages/<str:message_id>", api.MessageDetailApi.as_view(), name="conversation-message"),
    path("conversations/<str:conversation_id>", api.ConversationDetailApi.as_view(), name="conversation"),
    path("conversations/<str:conversation_id>/close", api.ConversationCloseApi.as_view(), name="conversation-close"),
    path("conversations/<str:conversation_id>/participants", api.ParticipantListApi.as_view(),
         name="conversation-participants"),
    path("conversations/<str:conversation_id>/participants/<str:participant_id>", api.ParticipantDetailApi.as_view(),
         name="conversation-participant"),
    path("conversations/<str:conversation_id>/messages", api.MessageListApi.as_view(), name="conversation-messages"),
    path("conversations/<str:conversation_id>/read", api.ReadApi.as_view(), name="conversation-read"),
    path("conversations/<str:conversation_id>/attachments", AttachmentUploadApi.as_view(),
         name="conversation-attachment-upload"),
    path("conversations/<str:conversation_id>/attachments/<str:attachment_id>", AttachmentLinkApi.as_view(),
         name="conversation-attachment"),
    path("attachments/<str:token>", attachment_download, name="conversation-attachment-download"),
]
