"""Who calls the conversation API: a service (API key, acting for a participant it names) or an end user
(the signed recipient token of the in-app inbox, acting as their own participant).

An end user sees only conversations they take part in: an unknown id and another tenant's conversation
answer the same 404; a conversation of their tenant they are not in answers 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, permissions, throttling
from rest_framework.request import Request

from comms import errors as kernel_errors
from comms.auth import ApiKeyAuthentication, ApiKeyRateThrottle, ServicePrincipal
from comms.conversations import selectors
from comms.conversations.models import Conversation, Participant
from comms.models import Tenant
from delivery.inbox import InboxPrincipal, InboxThrottle, InboxTokenAuthentication


class ConversationAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`, or `Authorization: Inbox <token>` / `?token=` for end users."""

    def authenticate(self, request: Request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.lower().startswith("bearer "):
            return ApiKeyAuthentication().authenticate(request)
        if header.lower().startswith("inbox ") or (not header and request.query_params.get("token")):
            return InboxTokenAuthentication().authenticate(request)
        if header:
            raise kernel_errors.Unauthenticated("Use 'Authorization: Bearer <api key>' or 'Inbox <token>'.")
        raise kernel_errors.Unauthenticated("An API key or an inbox token is required.")

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="comms"'


class ConversationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema's name for ConversationAuthentication (without it drf-spectacular warns, and
    `check --deploy --fail-level WARNING` fails)."""

    target_class = ConversationAuthentication
    name = "conversation"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Bearer <api key>` (acting for `participant_id`/`recipient_id`), or the end "
                               "user's `Inbox <token>` (also `?token=`)"}


class ConversationPermission(permissions.BasePermission):
    """API keys need the view's scope; end users may call the methods in `end_user_methods`."""

    def has_permission(self, request: Request, view) -> bool:
        principal = request.user
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            return True  # 405 for everyone
        if isinstance(principal, InboxPrincipal):
            if request.method not in getattr(view, "end_user_methods", ()):
                raise kernel_errors.Forbidden("An inbox token cannot do this; it needs an API key.")
            return True
        if not isinstance(principal, ServicePrincipal):
            raise kernel_errors.Unauthenticated()
        scope = view.required_scopes.get(request.method, "admin")
        if not principal.has_scope(scope):
            raise kernel_errors.Forbidden(f"This API key lacks the '{scope}' scope.", details={"required_scope": scope})
        return True


class ConversationThrottle(throttling.BaseThrottle):
    """The inbox budget per recipient for end users, the key's budget for services."""

    def allow_request(self, request: Request, view) -> bool:
        self._inner = InboxThrottle() if isinstance(request.user, InboxPrincipal) else ApiKeyRateThrottle()
        return self._inner.allow_request(request, view)

    def wait(self) -> float:
        return self._inner.wait()


@dataclass
class Caller:
    tenant: Tenant
    principal: Any  # the audit actor: ServicePrincipal, or the end user's participant once known
    end_user: InboxPrincipal | None

    @property
    def recipient(self):
        return self.end_user.recipient if self.end_user else None


def caller(request: Request) -> Caller:
    user = request.user
    if isinstance(user, InboxPrincipal):
        return Caller(tenant=user.recipient.tenant, principal=None, end_user=user)
    return Caller(tenant=user.tenant, principal=user, end_user=None)


def conversation_for(c: Caller, conversation_id: str) -> tuple[Conversation, Participant | None]:
    """The conversation and, for an end user, their own participant (403 if they are not one)."""
    conversation = selectors.conversation_get(tenant=c.tenant, conversation_id=conversation_id)
    if c.end_user is None:
        return conversation, None
    return conversation, selectors.participant_of(conversation=conversation, recipient=c.recipient)


def acting_participant(c: Caller, conversation: Conversation, own: Participant | None, data: Any) -> Participant:
    """End users act as themselves (naming someone else is refused); services name the participant."""
    participant_id = data.get("participant_id") if hasattr(data, "get") else None
    recipient_id = data.get("recipient_id") if hasattr(data, "get") else None
    if own is not None:
        if participant_id and str(participant_id) != str(own.id):
            raise kernel_errors.Forbidden("An inbox token acts only as its own participant.")
        return own
    if participant_id is not None and not isinstance(participant_id, str) or (
            recipient_id is not None and not isinstance(recipient_id, str)):
        raise kernel_errors.ValidationFailed("participant_id and recipient_id are strings.")
    return selectors.participant_get(conversation=conversation, participant_id=participant_id,
                                     recipient_external_id=recipient_id)
