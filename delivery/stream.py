"""Live inbox: Server-Sent Events over ASGI, fed by the Redis pub/sub notice of each delivery.

Served by the ASGI process (uvicorn; `make run` starts it beside gunicorn) because a WSGI worker
would hold a thread per open stream. Streams end after COMMS_INBOX_STREAM_SECONDS; EventSource
reconnects by itself, and its Last-Event-ID lets a client fetch what it missed from the inbox API.
"""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from rest_framework.utils.encoders import JSONEncoder

from comms import errors
from comms.throttles import auth_failed, auth_locked, locked_out_response
from delivery.inbox import recipient_for_token, representation
from delivery.models import InAppNotification
from delivery.providers.in_app import inbox_channel

KEEPALIVE_SECONDS = 15


def _item(item_id: str) -> dict | None:
    item = InAppNotification.objects.filter(pk=item_id).first()
    return representation(item) if item else None


async def inbox_stream(request):
    """Same credential rules as the inbox API: a locked-out address gets 429 whatever it sends, and each
    forged or expired token counts towards its lockout (comms.throttles)."""
    header = request.headers.get("Authorization", "")
    token = header[6:].strip() if header.lower().startswith("inbox ") else request.GET.get("token", "")
    if not token:
        return JsonResponse(errors.Unauthenticated("An inbox token is required.").as_dict(), status=401)
    try:
        await sync_to_async(auth_locked)(request)
    except errors.RateLimited as exc:
        return locked_out_response(request, exc)
    try:
        recipient = await sync_to_async(recipient_for_token)(token)
    except errors.Unauthenticated as exc:
        await sync_to_async(auth_failed)(request, kind="inbox stream token")
        return JsonResponse(exc.as_dict(), status=exc.status)

    async def events():
        client = aioredis.from_url(settings.REDIS_URL)
        pubsub = client.pubsub()
        await pubsub.subscribe(inbox_channel(recipient.pk))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.COMMS_INBOX_STREAM_SECONDS
        try:
            yield "retry: 3000\n\n"
            last_beat = loop.time()
            while loop.time() < deadline:
                notice = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if notice is not None:
                    item_id = json.loads(notice["data"])["id"]
                    item = await sync_to_async(_item)(item_id)
                    if item is not None:
                        # DRF's encoder, as the inbox API renders the same dict: ISO 8601 with 'Z'
                        yield f"id: {item_id}\nevent: notification\ndata: {json.dumps(item, cls=JSONEncoder)}\n\n"
                elif loop.time() - last_beat > KEEPALIVE_SECONDS:
                    last_beat = loop.time()
                    yield ": keepalive\n\n"
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()
            await client.aclose()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
