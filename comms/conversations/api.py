"""The conversation REST API: thin views (parse, check access, call one service, serialise).

Routes (under /api/v1/): conversations, conversations/{id}, conversations/{id}/participants[/{pid}],
conversations/{id}/messages, conversations/{id}/read, conversations/{id}/close, and
conversations/messages/{message_id} for edit/delete (not /messages/{id}: that is the notification API).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors as kernel_errors
from comms.conversations import errors, selectors, services
from comms.conversations.access import (
    ConversationAuthentication, ConversationPermission, ConversationThrottle, acting_participant, caller,
    conversation_for,
)
from comms.conversations.present import conversation_json, message_json, participant_json
from comms.conversations.serializers import (
    ActingSerializer, ConversationCreateSerializer, MessageEditSerializer, MessagePostSerializer,
    ParticipantInSerializer, ReadSerializer,
)
from comms.models import Recipient


class ConversationView(APIView):
    authentication_classes = [ConversationAuthentication]
    permission_classes = [ConversationPermission]
    throttle_classes = [ConversationThrottle]
    required_scopes: dict[str, str] = {}
    end_user_methods: tuple[str, ...] = ()


def _spec(tenant, data: dict) -> services.ParticipantSpec:
    if data.get("recipient_id"):
        recipient = Recipient.objects.filter(tenant=tenant, external_id=data["recipient_id"]).first()
        if recipient is None:
            raise kernel_errors.RecipientNotFound(details={"recipient_id": data["recipient_id"]})
        return services.ParticipantSpec(recipient=recipient, role=data["role"], display_name=data["display_name"])
    user = get_user_model().objects.filter(username=data["staff_username"], is_staff=True, is_active=True).first()
    if user is None:
        raise kernel_errors.ValidationFailed("No active staff user with that username.",
                                             details={"staff_username": data["staff_username"]})
    return services.ParticipantSpec(staff_user=user, role=data["role"], display_name=data["display_name"])


def _limit(request) -> int:
    raw = request.query_params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= selectors.MAX_PAGE:
        raise kernel_errors.ValidationFailed(f"limit is an integer from 1 to {selectors.MAX_PAGE}.")
    return int(raw)


class ConversationListApi(ConversationView):
    required_scopes = {"GET": "messages:read", "POST": "messages:send"}
    end_user_methods = ("GET",)

    @extend_schema(request=ConversationCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        data = ConversationCreateSerializer.validated(request.data)
        c = caller(request)
        specs = [_spec(c.tenant, p) for p in data["participants"]]
        conversation = services.conversation_create(tenant=c.tenant, kind=data["kind"], subject=data["subject"],
                                                    metadata=data["metadata"], participants=specs, actor=c.principal)
        body = conversation_json(conversation, participants=selectors.participants(conversation=conversation))
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        c = caller(request)
        state = request.query_params.get("state") or None
        if state not in (None, "open", "closed"):
            raise kernel_errors.ValidationFailed("state is open or closed.")
        limit = _limit(request)
        if c.end_user:
            rows = list(selectors.conversations_for_recipient(recipient=c.recipient, state=state)[:limit])
            return Response({"results": [conversation_json(r, unread=r.unread) for r in rows]})
        rows = selectors.conversations_for_tenant(tenant=c.tenant, state=state,
                                                  recipient_external_id=request.query_params.get("recipient_id"))
        return Response({"results": [conversation_json(r) for r in rows[:limit]]})


class ConversationDetailApi(ConversationView):
    required_scopes = {"GET": "messages:read"}
    end_user_methods = ("GET",)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, conversation_id: str):
        conversation, own = conversation_for(caller(request), conversation_id)
        people = selectors.participants(conversation=conversation)
        counts = {str(p.id): selectors.unread_count(participant=p) for p in people if p.left_at is None}
        body = conversation_json(conversation, participants=people,
                                 unread=counts.get(str(own.id)) if own else None)
        for p in body["participants"]:
            p["unread"] = counts.get(p["id"])
        if own is not None:
            body["me"] = str(own.id)  # the end user's own participant in this conversation
        return Response(body)


class ConversationCloseApi(ConversationView):
    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, conversation_id: str):
        c = caller(request)
        conversation, _ = conversation_for(c, conversation_id)
        return Response(conversation_json(services.conversation_close(conversation=conversation, actor=c.principal)))


class ParticipantListApi(ConversationView):
    required_scopes = {"POST": "messages:send", "GET": "messages:read"}
    end_user_methods = ("GET",)

    @extend_schema(request=ParticipantInSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, conversation_id: str):
        c = caller(request)
        conversation, _ = conversation_for(c, conversation_id)
        spec = _spec(c.tenant, ParticipantInSerializer.validated(request.data))
        participant = services.participant_add(conversation=conversation, spec=spec, actor=c.principal)
        return Response(participant_json(participant), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, conversation_id: str):
        conversation, _ = conversation_for(caller(request), conversation_id)
        return Response({"results": [participant_json(p) for p in selectors.participants(conversation=conversation)]})


class ParticipantDetailApi(ConversationView):
    """DELETE: a service removes anyone; an end user removes only themselves (leaves)."""

    required_scopes = {"DELETE": "messages:send"}
    end_user_methods = ("DELETE",)

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def delete(self, request, conversation_id: str, participant_id: str):
        c = caller(request)
        conversation, own = conversation_for(c, conversation_id)
        participant = selectors.participant_get(conversation=conversation, participant_id=participant_id)
        if own is not None and own.pk != participant.pk:
            raise kernel_errors.Forbidden("An inbox token can only remove its own participant (leave).")
        participant = services.participant_remove(participant=participant, actor=c.principal or own)
        return Response(participant_json(participant))


class MessageListApi(ConversationView):
    required_scopes = {"GET": "messages:read", "POST": "messages:send"}
    end_user_methods = ("GET", "POST")

    @extend_schema(request=MessagePostSerializer, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT})
    def post(self, request, conversation_id: str):
        c = caller(request)
        data = MessagePostSerializer.validated(request.data)
        conversation, own = conversation_for(c, conversation_id)
        sender = acting_participant(c, conversation, own, data)
        key = data["client_key"] or request.headers.get("Idempotency-Key", "")
        message, created = services.message_post(conversation=conversation, sender=sender, body=data["body"],
                                                 reply_to_id=data["reply_to"], client_key=key,
                                                 attachment_ids=data["attachment_ids"], actor=c.principal or sender)
        return Response(message_json(message), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, conversation_id: str):
        """`after=<index>` (older → newer catch-up) or `before=<index>` (scroll back); neither: the latest."""
        after = selectors.cursor(request.query_params.get("after"))
        before = selectors.cursor(request.query_params.get("before"))
        limit = _limit(request)
        conversation, _ = conversation_for(caller(request), conversation_id)
        page, more = selectors.messages_page(conversation=conversation, after=after, before=before, limit=limit)
        body = {"results": [message_json(m) for m in page], "has_more": more, "last_index": conversation.last_index}
        if page:
            body["next_after"] = page[-1].index
            body["prev_before"] = page[0].index
        return Response(body)


class MessageDetailApi(ConversationView):
    """PUT edits (the sender only), DELETE tombstones (the sender or an agent participant)."""

    required_scopes = {"PUT": "messages:send", "DELETE": "messages:send", "GET": "messages:read"}
    end_user_methods = ("PUT", "DELETE", "GET")

    def _load(self, request, message_id: str):
        c = caller(request)
        message = selectors.message_get(tenant=c.tenant, message_id=message_id)
        if c.end_user is not None:
            try:
                own = selectors.participant_of(conversation=message.conversation, recipient=c.recipient)
            except errors.NotParticipant:
                raise errors.MessageNotFound() from None  # a message id says nothing to an outsider
            return c, message, own
        return c, message, None

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, message_id: str):
        _, message, _ = self._load(request, message_id)
        return Response(message_json(message))

    @extend_schema(request=MessageEditSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, message_id: str):
        data = MessageEditSerializer.validated(request.data)
        c, message, own = self._load(request, message_id)
        editor = acting_participant(c, message.conversation, own, data)
        message = services.message_edit(message=message, editor=editor, body=data["body"], actor=c.principal or editor)
        return Response(message_json(message))

    @extend_schema(request=ActingSerializer, responses=OpenApiTypes.OBJECT)
    def delete(self, request, message_id: str):
        # DELETE bodies are optional: the acting participant may come in the query (the end user's own
        # `token` query parameter is the credential, not a field).
        query = {k: v for k, v in request.query_params.dict().items() if k != "token"}
        data = ActingSerializer.validated(request.data if request.data else query)
        c, message, own = self._load(request, message_id)
        editor = acting_participant(c, message.conversation, own, data)
        message = services.message_delete(message=message, editor=editor, actor=c.principal or editor)
        return Response(message_json(message))


class ReadApi(ConversationView):
    """Move the read horizon: everything up to `index` is read (receipts follow)."""

    required_scopes = {"POST": "messages:send"}
    end_user_methods = ("POST",)

    @extend_schema(request=ReadSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, conversation_id: str):
        data = ReadSerializer.validated(request.data)
        c = caller(request)
        conversation, own = conversation_for(c, conversation_id)
        participant = acting_participant(c, conversation, own, data)
        participant = services.read_horizon_set(participant=participant, index=data["index"])
        return Response({"participant_id": str(participant.id), "last_read_index": participant.last_read_index,
                         "unread": selectors.unread_count(participant=participant)})
