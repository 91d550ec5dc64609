"""The end-user inbox API: what a recipient's own app calls, with a token the customer's backend mints.

Tokens are Django-signed ``{tenant, recipient}`` pairs with a lifetime (COMMS_INBOX_TOKEN_SECONDS):
they grant access to one recipient's inbox and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import authentication, exceptions, permissions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.auth import RedisWindowThrottle
from comms.models import Recipient
from comms.serializers import StrictSerializer
from comms.throttles import auth_failed, auth_locked
from comms.parsers import uuid_or_404
from delivery.models import InAppNotification

SALT = "comms.inbox"


def inbox_token(*, recipient: Recipient) -> str:
    return signing.dumps({"t": str(recipient.tenant_id), "r": str(recipient.pk)}, salt=SALT, compress=True)


def recipient_for_token(token: str) -> Recipient:
    """The recipient a token opens, or Unauthenticated (shared by the inbox API and the live stream)."""
    try:
        claims = signing.loads(token.strip(), salt=SALT, max_age=settings.COMMS_INBOX_TOKEN_SECONDS)
    except signing.SignatureExpired:
        raise errors.Unauthenticated("The inbox token has expired.") from None
    except signing.BadSignature:
        raise errors.Unauthenticated("The inbox token is not valid.") from None
    recipient = Recipient.objects.filter(pk=claims.get("r"), tenant_id=claims.get("t")).first()
    if recipient is None:
        raise errors.Unauthenticated("The inbox token is not valid.")
    return recipient


@dataclass(frozen=True)
class InboxPrincipal:
    recipient: Recipient
    is_authenticated = True


class InboxTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Inbox <token>` (or `?token=` for EventSource, which cannot set headers)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "inbox":
            token = request.query_params.get("token", "")
        if not token:
            raise errors.Unauthenticated("An inbox token is required.")
        auth_locked(request)
        try:
            return InboxPrincipal(recipient_for_token(token)), token
        except errors.Unauthenticated:
            auth_failed(request, kind="inbox token")
            raise

    def authenticate_header(self, request):
        return 'Inbox realm="comms"'


class IsInboxOwner(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, InboxPrincipal)


class InboxThrottle(RedisWindowThrottle):
    """Public endpoints are rate-limited per recipient (COMMS_INBOX_RATE)."""

    def rate(self) -> str:
        return settings.COMMS_INBOX_RATE

    def ident_for(self, request) -> str:
        return f"inbox:{request.user.recipient.pk}" if isinstance(request.user, InboxPrincipal) else self.get_ident(request)


class InboxView(APIView):
    authentication_classes = [InboxTokenAuthentication]
    permission_classes = [IsInboxOwner]
    throttle_classes = [InboxThrottle]

    def initial(self, request, *args, **kwargs):
        # An unsupported method is 405 whoever asks (the token check would otherwise answer 401 first).
        if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def items(self, request):
        now = timezone.now()
        return InAppNotification.objects.filter(recipient=request.user.recipient).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def item(self, request, item_id: str) -> InAppNotification:
        found = self.items(request).filter(pk=uuid_or_404(item_id, "No such inbox item.")).first()
        if found is None:
            raise errors.NotFound("No such inbox item.")
        return found


def representation(item: InAppNotification) -> dict:
    return {"id": str(item.id), "title": item.title, "body": item.body, "deep_link": item.deep_link,
            "category": item.category, "data": item.data, "pinned": item.pinned, "read": item.read_at is not None,
            "read_at": item.read_at, "archived": item.archived_at is not None, "created_at": item.created_at,
            "expires_at": item.expires_at}


class InboxPagination(CursorPagination):
    ordering = ("-pinned", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100


class InboxListApi(InboxView):
    @extend_schema(parameters=[OpenApiParameter("status", enum=["unread", "read", "archived", "all"])],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        status = request.query_params.get("status", "all")
        items = self.items(request)
        if status == "archived":
            items = items.filter(archived_at__isnull=False)
        else:
            items = items.filter(archived_at__isnull=True)
            if status == "unread":
                items = items.filter(read_at__isnull=True)
            elif status == "read":
                items = items.filter(read_at__isnull=False)
            elif status != "all":
                raise errors.ValidationFailed("status is unread, read, archived or all.")
        paginator = InboxPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        response = paginator.get_paginated_response([representation(i) for i in page])
        response.data["unread"] = self.items(request).filter(read_at__isnull=True, archived_at__isnull=True).count()
        return response


class InboxCountApi(InboxView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"unread": self.items(request).filter(read_at__isnull=True, archived_at__isnull=True).count()})


class InboxActionApi(InboxView):
    """POST /inbox/{id}/read | unread | archive | unarchive."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, item_id: str, action: str):
        item = self.item(request, item_id)
        now = timezone.now()
        changes = {"read": {"read_at": item.read_at or now}, "unread": {"read_at": None},
                   "archive": {"archived_at": item.archived_at or now}, "unarchive": {"archived_at": None}}
        if action not in changes:
            raise errors.NotFound("Unknown inbox action.")
        InAppNotification.objects.filter(pk=item.pk).update(**changes[action])
        item.refresh_from_db()
        return Response(representation(item))


class InboxReadAllApi(InboxView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        updated = self.items(request).filter(read_at__isnull=True).update(read_at=timezone.now())
        return Response({"marked_read": updated})


class InboxTokenSerializer(StrictSerializer):
    recipient_id = serializers.CharField(max_length=255)


class InboxTokenApi(APIView):
    """The customer's backend mints a token for one of its users (never the browser itself)."""

    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=InboxTokenSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        serializer = InboxTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient = Recipient.objects.filter(tenant=request.user.tenant,
                                             external_id=serializer.validated_data["recipient_id"]).first()
        if recipient is None:
            raise errors.RecipientNotFound(details={"recipient_id": serializer.validated_data["recipient_id"]})
        return Response({"token": inbox_token(recipient=recipient), "expires_in": settings.COMMS_INBOX_TOKEN_SECONDS})
