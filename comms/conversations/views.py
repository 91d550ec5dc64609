"""The demo chat page: a small client of the conversation API and WebSocket, served by comms.

It holds no credential itself: the end-user token comes in the URL fragment (#token=…, never sent to
the server or its logs) or is pasted into the form. All behaviour is in static/conversations/chat.js
(the CSP forbids inline scripts and handlers).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def demo_chat(request: HttpRequest) -> HttpResponse:
    return render(request, "conversations/demo.html", {})
