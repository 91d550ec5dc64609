"""Attachment endpoints: upload (multipart) as a participant, fresh signed links, and the download.

Who may upload: an API key (scope ``messages:send``) acting for a participant named by
``participant_id``, or the end user's own inbox token (``Authorization: Inbox <token>``, minted by
POST /api/v1/inbox/token) when that recipient is an active participant. A conversation of another
tenant is 404 like one that does not exist (no existence leak); not being a participant is 403.

Downloads are only through ``/api/v1/attachments/<signed token>``: the token expires
(COMMS_ATTACHMENT_LINK_SECONDS), and the bytes are served as an attachment (inline only for raster
images) with ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: default-src 'none';
sandbox``, so even a file that slipped past the content check could not run in our origin.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import permissions
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.auth import ApiKeyAuthentication, ServicePrincipal
from comms.conversations.attachments import (
    RASTER, attachment_for_token, attachment_store, download_token, storage,
)
from comms.conversations.models import Attachment, Conversation, Participant
from comms.parsers import uuid_or_404
from delivery.inbox import InboxPrincipal, InboxTokenAuthentication

UPLOAD_OVERHEAD = 64 * 1024  # multipart boundaries and fields around the file


class ParticipantAuthentication(InboxTokenAuthentication):
    """`Authorization: Inbox <token>` for an end user; otherwise the API key."""

    def authenticate(self, request):
        scheme = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[0].lower()
        if scheme == "inbox":
            return super().authenticate(request)
        return ApiKeyAuthentication().authenticate(request)


class ParticipantScheme(OpenApiAuthenticationExtension):
    target_class = ParticipantAuthentication
    name = "participant"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Bearer <api key>` acting for `participant_id`, or the end user's `Inbox <token>`"}


class IsParticipantCaller(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        principal = request.user
        if isinstance(principal, InboxPrincipal):
            return True
        if not isinstance(principal, ServicePrincipal):
            raise errors.Unauthenticated()
        if not principal.has_scope("messages:send"):
            raise errors.Forbidden("This API key lacks the 'messages:send' scope.",
                                   details={"required_scope": "messages:send"})
        return True


def attachment_brief(att: Attachment) -> dict:
    """An attachment as carried inside a message (REST and WebSocket alike): signed, expiring links on
    COMMS_PUBLIC_URL, since a WebSocket event has no request to build them from. After the expiry a
    client asks GET /conversations/{id}/attachments/{attachment_id} for fresh ones."""
    base = settings.COMMS_PUBLIC_URL.rstrip("/")

    def link(thumb: bool) -> str:
        return base + reverse("conversation-attachment-download", args=[download_token(att, thumb=thumb)])

    return {"id": str(att.id), "name": att.original_name, "content_type": att.content_type, "size": att.size,
            "width": att.width, "height": att.height, "url": link(False),
            "thumbnail_url": link(True) if att.thumbnail else None,
            "expires_in": settings.COMMS_ATTACHMENT_LINK_SECONDS}


def representation(att: Attachment, request: HttpRequest) -> dict:
    def link(thumb: bool) -> str:
        return request.build_absolute_uri(reverse("conversation-attachment-download",
                                                  args=[download_token(att, thumb=thumb)]))

    return {"id": str(att.id), "conversation_id": str(att.conversation_id),
            "message_id": str(att.message_id) if att.message_id else None, "name": att.original_name,
            "content_type": att.content_type, "size": att.size, "sha256": att.sha256, "width": att.width,
            "height": att.height, "url": link(False), "thumbnail_url": link(True) if att.thumbnail else None,
            "expires_in": settings.COMMS_ATTACHMENT_LINK_SECONDS, "created_at": att.created_at}


class AttachmentView(APIView):
    authentication_classes = [ParticipantAuthentication]
    permission_classes = [IsParticipantCaller]

    def participant(self, request, conversation_id: str, participant_id: str = "") -> Participant:
        """The calling participant of the conversation (404 for another tenant's, 403 for a non-member)."""
        principal = request.user
        tenant_id = principal.recipient.tenant_id if isinstance(principal, InboxPrincipal) else principal.tenant.pk
        conversation = Conversation.objects.filter(
            pk=uuid_or_404(conversation_id, "No such conversation."), tenant_id=tenant_id).first()
        if conversation is None:
            raise errors.NotFound("No such conversation.")
        active = Participant.objects.select_related("conversation").filter(conversation=conversation,
                                                                           left_at__isnull=True)
        if isinstance(principal, InboxPrincipal):
            found = active.filter(recipient=principal.recipient).first()
        elif not participant_id:
            raise errors.ValidationFailed("participant_id names the participant the API key acts for.",
                                          details={"field": "participant_id"})
        else:
            found = active.filter(pk=uuid_or_404(participant_id, "No such participant.")).first()
        if found is None:
            raise errors.Forbidden("Not a participant of this conversation.")
        return found


class AttachmentUploadApi(AttachmentView):
    """POST /api/v1/conversations/{id}/attachments — multipart field ``file`` (+ ``participant_id``)."""

    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": OpenApiTypes.OBJECT}, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, conversation_id: str):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        limit = settings.COMMS_ATTACHMENT_MAX_BYTES
        if declared > limit + UPLOAD_OVERHEAD:  # refused before the body is read
            raise errors.AttachmentTooLarge(details={"max_bytes": limit})
        participant = self.participant(request, conversation_id, str(request.data.get("participant_id", "")))
        upload = request.FILES.get("file")
        if upload is None:
            raise errors.ValidationFailed("Send the file as the multipart field 'file'.", details={"field": "file"})
        data = upload.read(limit + 1)
        att = attachment_store(conversation=participant.conversation, data=data, filename=upload.name or "",
                               uploaded_by=participant)
        return Response(representation(att, request), status=201)


class AttachmentLinkApi(AttachmentView):
    """GET /api/v1/conversations/{id}/attachments/{attachment_id} — metadata with fresh signed links."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, conversation_id: str, attachment_id: str):
        participant = self.participant(request, conversation_id, request.query_params.get("participant_id", ""))
        att = Attachment.objects.filter(conversation=participant.conversation,
                                        pk=uuid_or_404(attachment_id, "No such attachment.")).first()
        if att is None:
            raise errors.NotFound("No such attachment.")
        return Response(representation(att, request))


@require_GET
def attachment_download(request: HttpRequest, token: str) -> HttpResponse:
    """The bytes behind a signed, unexpired link, served so that no browser runs them."""
    try:
        att, thumb = attachment_for_token(token)
        name = att.thumbnail.name if thumb else att.file.name
        if not name:
            raise errors.NotFound("This attachment has no thumbnail.")
        with storage().open(name, "rb") as handle:
            data = handle.read()
    except errors.CommsError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status)
    except FileNotFoundError:
        err = errors.NotFound("The attachment's file is gone.")
        return JsonResponse(err.as_dict(), status=err.status)
    if thumb:
        content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    else:
        content_type = att.content_type + ("; charset=utf-8" if att.content_type == "text/plain" else "")
    response = HttpResponse(data, content_type=content_type)
    disposition = "inline" if thumb or att.content_type in RASTER else "attachment"
    filename = att.original_name.encode("ascii", "replace").decode().replace('"', "_") or "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
