"""``POST``/``DELETE /api/v1/inbox/webpush``: the browser registers its own Web Push subscription.

The drop-in subscribe script (comms/static/comms/webpush/subscribe.js) runs in the customer's page and
cannot hold an API key, so it authenticates like the inbox: ``Authorization: Inbox <token>``, a token
the customer's backend mints per signed-in user (``POST /api/v1/inbox-tokens``). The subscription is
checked and stored by the kernel (comms.webpush, comms.services.webpush_subscribe) for the token's
recipient only.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from comms import errors
from comms.models import Device
from comms.serializers import device_representation
from comms.services import device_unregister, webpush_subscribe
from comms.webpush_api import ENDPOINT_DOC, SUBSCRIPTION_DOC, subscription_from
from delivery.inbox import InboxView


class InboxWebPushApi(InboxView):
    @extend_schema(request=SUBSCRIPTION_DOC, responses={201: dict, 200: dict})
    def post(self, request):
        subscription, app_id = subscription_from(request.data)
        device, created = webpush_subscribe(recipient=request.user.recipient, subscription=subscription,
                                            app_id=app_id)
        return Response(device_representation(device), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=ENDPOINT_DOC, responses=dict)
    def delete(self, request):
        endpoint = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if not isinstance(endpoint, str) or not endpoint:
            raise errors.ValidationFailed("endpoint is required.", details={"field": "endpoint"})
        recipient = request.user.recipient
        # Only the token's own recipient's subscription: a token must not unregister someone else's browser.
        if not Device.objects.filter(tenant_id=recipient.tenant_id, recipient=recipient, token=endpoint).exists() \
                or not device_unregister(tenant=recipient.tenant, token=endpoint):
            raise errors.NotFound("No such subscription.")
        return Response({"unregistered": True})
