"""WebSocket routes and the origin check (config/asgi.py mounts them)."""

from __future__ import annotations

from urllib.parse import urlparse

from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from comms.conversations.consumers import ConversationConsumer

websocket_urlpatterns = [path("ws/conversations", ConversationConsumer.as_asgi())]


class ConversationOriginValidator(OriginValidator):
    """A browser's Origin must be one of ours (cross-site WebSocket hijacking); a client that sends no
    Origin (a native app, a server) is not a browser and is let through — the token is the credential."""

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def allowed_origins() -> list[str]:
    configured = list(getattr(settings, "COMMS_WS_ALLOWED_ORIGINS", []) or [])
    if configured:
        return configured
    # A pattern without a scheme matches the host on any scheme and port (channels' match_allowed_origin).
    return [h.strip("[]") for h in settings.ALLOWED_HOSTS]


def websocket_application():
    return ConversationOriginValidator(URLRouter(websocket_urlpatterns), allowed_origins())
