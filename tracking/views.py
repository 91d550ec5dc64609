"""The click redirect and the open pixel: public, unauthenticated, cheap, and never an open redirect."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import storages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from comms import errors
from comms.throttles import public_rate_limit
from delivery.models import Message, MessageBatch
from tracking import links
from tracking.models import EventType, TrackingMiss
from tracking.normalised import NormalisedEvent
from tracking.services.events import MESSAGE_FIELDS, event_ingest

log = logging.getLogger(__name__)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _client_ip(request: HttpRequest) -> str:
    if settings.COMMS_TRUST_FORWARDED:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def stored_html(message: Message) -> str:
    """The HTML the email was built from (before rewriting): row, shared batch content or artifact."""
    if message.body_html:
        return message.body_html
    if message.batch_id:
        batch = MessageBatch.objects.filter(pk=message.batch_id).only("body_html", "template_version_id").first()
        if batch is not None and batch.body_html and not batch.template_version_id:
            return batch.body_html
    if message.artifact:
        try:
            with storages["artifacts"].open(message.artifact) as fh:
                return json.loads(fh.read()).get("body_html", "")
        except (OSError, ValueError):
            log.warning("artifact %s of message %s unreadable", message.artifact, message.id)
    return ""


def _bad_token() -> JsonResponse:
    err = errors.TrackingTokenInvalid()
    return JsonResponse(err.as_dict(), status=err.status)


def _expired(message: Message) -> bool:
    origin = message.sent_at or message.created_at
    return origin < timezone.now() - timedelta(days=settings.COMMS_TRACKING_TOKEN_DAYS)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    return response


@public_rate_limit("click")
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    parsed = links.parse_click_token(token)
    if parsed is None:
        return _bad_token()
    message_id, index, mac = parsed
    message = Message.objects.only(*MESSAGE_FIELDS, "body_html", "artifact", "template_key", "created_at").filter(
        pk=message_id).first()
    if message is None:
        TrackingMiss.objects.create(message_id=message_id, kind="click", reason="message_gone", token=token[:200])
        return _bad_token()
    urls = links.stored_links(stored_html(message))
    url = urls[index] if index < len(urls) else ""
    if not url or not links.click_mac_ok(message_id, index, url, mac) or not links.safe_destination(url):
        return _bad_token()
    utm = links.utm_for(message)
    destination = links.with_utm(url, **utm) if utm else url
    if _expired(message):
        TrackingMiss.objects.create(message_id=message_id, kind="click", reason="expired", token=token[:200])
    else:
        event_ingest(message=message, event=NormalisedEvent(
            provider="comms", event_type=EventType.CLICKED, message_id=str(message_id), url=url,
            timestamp=timezone.now(), user_agent=request.headers.get("User-Agent", "")[:512], ip=_client_ip(request),
            data={"link_index": index}))
    return _no_store(HttpResponseRedirect(destination))


@public_rate_limit("open")
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    message_id = links.parse_open_token(token)
    if message_id is not None:
        message = Message.objects.only(*MESSAGE_FIELDS, "created_at").filter(pk=message_id).first()
        if message is None:
            TrackingMiss.objects.create(message_id=message_id, kind="open", reason="message_gone", token=token[:200])
        elif _expired(message):
            TrackingMiss.objects.create(message_id=message_id, kind="open", reason="expired", token=token[:200])
        else:
            event_ingest(message=message, event=NormalisedEvent(
                provider="comms", event_type=EventType.OPENED, message_id=str(message_id), timestamp=timezone.now(),
                user_agent=request.headers.get("User-Agent", "")[:512], ip=_client_ip(request)))
    # Always the pixel: a broken image in someone's mail client helps nobody.
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))
