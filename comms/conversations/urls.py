"""Routes of the conversation channels branch (attachments); the core API adds its own on merge."""

from django.urls import path

from comms.conversations.attachments_api import AttachmentLinkApi, AttachmentUploadApi, attachment_download

urlpatterns = [
    path("conversations/<str:conversation_id>/attachments", AttachmentUploadApi.as_view(),
         name="conversation-attachment-upload"),
    path("conversations/<str:conversation_id>/attachments/<str:attachment_id>", AttachmentLinkApi.as_view(),
         name="conversation-attachment"),
    path("attachments/<str:token>", attachment_download, name="conversation-attachment-download"),
]
