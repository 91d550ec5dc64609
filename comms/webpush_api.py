"""Web Push subscriptions through the API (a backend with an API key) and the browser kit's pages.

* ``POST /api/v1/recipients/{id}/webpush`` — register (or move) a browser subscription
  (``PushSubscription.toJSON()``: ``endpoint``, ``keys.p256dh``, ``keys.auth``, optional
  ``expirationTime``, ``app_id``) as a ``webpush`` device of the recipient.
* ``POST /api/v1/webpush/unsubscribe`` ``{"endpoint"}`` — forget it.
* ``GET /api/v1/webpush/vapid-public-key`` — the application server key the browser subscribes with
  (public, no key needed: it is in every subscribing page anyway).
* ``GET /webpush/sw.js`` and ``GET /webpush/subscribe`` — the service worker (scope ``/webpush/``) and the
  demo page of the drop-in kit (comms/static/comms/webpush/).

The browser itself registers through the inbox API with an inbox token (delivery/webpush_inbox.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors, webpush
from comms.audit import client_ip
from comms.models import Recipient
from comms.serializers import device_representation
from comms.services import device_unregister, webpush_subscribe
from comms.throttles import public_throttle

FIELDS = {"endpoint", "keys", "expirationTime", "app_id"}
# For the OpenAPI schema only: the body is checked by comms.webpush.subscription_validate (typed errors).
SUBSCRIPTION_DOC = inline_serializer("WebPushSubscription", {
    "endpoint": serializers.URLField(help_text="https push service URL (PushSubscription.endpoint)"),
    "keys": inline_serializer("WebPushKeys", {
        "p256dh": serializers.CharField(help_text="base64url, 65-byte uncompressed P-256 point"),
        "auth": serializers.CharField(help_text="base64url, 16 bytes"),
    }),
    "expirationTime": serializers.IntegerField(required=False, allow_null=True),
    "app_id": serializers.CharField(required=False, max_length=255),
})
ENDPOINT_DOC = inline_serializer("WebPushEndpoint", {"endpoint": serializers.URLField()})
STATIC = Path(__file__).resolve().parent / "static" / "comms" / "webpush"


def subscription_from(data: Any) -> tuple[webpush.Subscription, str]:
    """(checked subscription, app_id) from a request body; typed errors for anything else."""
    if not isinstance(data, dict):
        raise errors.InvalidSubscription("Send the subscription as a JSON object.", details={"field": "subscription"})
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise errors.UnknownField(details={"fields": unknown})
    app_id = data.get("app_id", "")
    if not isinstance(app_id, str) or len(app_id) > 255:
        raise errors.ValidationFailed("app_id must be a string of at most 255 characters.", details={"field": "app_id"})
    return webpush.subscription_validate(data), app_id


class RecipientWebPushApi(APIView):
    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=SUBSCRIPTION_DOC, responses={201: dict, 200: dict})
    def post(self, request, external_id: str):
        subscription, app_id = subscription_from(request.data)
        recipient = Recipient.objects.filter(tenant=request.user.tenant, external_id=external_id).first()
        if recipient is None:
            raise errors.RecipientNotFound(details={"recipient_id": external_id})
        device, created = webpush_subscribe(recipient=recipient, subscription=subscription, app_id=app_id,
                                            actor=request.user, ip=client_ip(request))
        return Response(device_representation(device), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WebPushUnsubscribeApi(APIView):
    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=ENDPOINT_DOC, responses=dict)
    def post(self, request):
        endpoint = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if not isinstance(endpoint, str) or not endpoint:
            raise errors.ValidationFailed("endpoint is required.", details={"field": "endpoint"})
        if not device_unregister(tenant=request.user.tenant, token=endpoint, actor=request.user,
                                 ip=client_ip(request), reason="web push subscription removed via API"):
            raise errors.NotFound("No such subscription.")
        return Response({"unregistered": True})


class VapidPublicKeyApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [public_throttle("webpush")]

    @extend_schema(responses=dict)
    def get(self, request):
        return Response({"public_key": webpush.vapid_public_key()})


@require_GET
def service_worker(request) -> HttpResponse:
    """sw.js from /webpush/ so its scope covers the demo page (a worker's scope is its own folder)."""
    response = HttpResponse((STATIC / "sw.js").read_bytes(), content_type="text/javascript")
    response["Cache-Control"] = "no-cache"  # browsers re-check a service worker; a stale one never updates
    return response


@require_GET
def subscribe_page(request) -> HttpResponse:
    """The kit's demo page: a button that asks for permission and subscribes this browser. The inbox
    token (minted by the customer's backend, POST /api/v1/inbox-tokens) says for whom."""
    token = request.GET.get("token", "")[:4096]
    return render(request, "comms/webpush_subscribe.html", {"token": token})
