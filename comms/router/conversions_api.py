"""POST /api/v1/messages/{id}/conversions: record a conversion and, when asked, route it as an event.

The conversion itself is tracking's (``tracking.services.conversions``: the event, the first-event
rule, the metric counters). It is served here, in the router, because a conversion can also be
routed as a named event for the message's recipient (``"event": "order.placed"``): journeys whose
goal (or exit, or wait) names that event see it exactly as if it had been posted to /events, and
routing rules for it run. Both commit together or not at all; the event's ``cause_ref`` is the
conversion's id, so a retried conversion (same idempotency key) does not route the event twice.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.models import Recipient
from comms.router.api import event_representation
from comms.router.events import event_ingest
from comms.router.steps import EventInput
from comms.serializers import StrictSerializer
from tracking.services.conversions import conversion_record


class ConversionSerializer(StrictSerializer):
    # value: a number or a decimal string ("19.90"); checked with the currency by the service.
    value = serializers.JSONField(required=False, default=None)
    currency = serializers.CharField(required=False, allow_blank=True, default="", max_length=8)
    occurred_at = serializers.DateTimeField(required=False, default=None)
    idempotency_key = serializers.CharField(required=False, default="", allow_blank=True)
    event = serializers.CharField(required=False, default="", allow_blank=True, max_length=128,
                                  help_text="Also route this event name for the message's recipient (journey goals).")


NoRecipient = errors.error_class("COMMS_CONVERSION_NO_RECIPIENT", 422,
                                 "The message went to an address, not a directory recipient: no event to route.")


class MessageConversionApi(APIView):
    """Record that the message's recipient converted; counted once per message in the metrics and A/B."""

    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=ConversionSerializer, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
                   parameters=[OpenApiParameter("Idempotency-Key", location=OpenApiParameter.HEADER, required=False,
                                                description="A retried call with the same key counts once.")])
    def post(self, request, message_id: str):
        serializer = ConversionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = request.headers.get("Idempotency-Key") or data["idempotency_key"] or None
        if key is not None and not 1 <= len(key) <= 255:
            raise errors.ValidationFailed("Idempotency-Key must be 1-255 characters.")
        at: datetime | None = data["occurred_at"]
        tenant = request.user.tenant
        with transaction.atomic():
            conversion = conversion_record(tenant=tenant, message_id=message_id, value=data["value"],
                                           currency=data["currency"] or None, occurred_at=at, idempotency_key=key)
            body = conversion.as_dict()
            if data["event"]:
                body["event"] = event_representation(_route(tenant, conversion, data["event"]))
        return Response(body, status=status.HTTP_201_CREATED if conversion.created else status.HTTP_200_OK)


def _route(tenant, conversion, name: str):
    """The conversion as event ``name`` for the message's recipient (a replay returns the first event)."""
    recipient_id = conversion.message.recipient_id
    external = (Recipient.objects.filter(pk=recipient_id, tenant=tenant)
                .values_list("external_id", flat=True).first())
    if not external:
        raise NoRecipient(details={"message_id": str(conversion.message.pk)})
    row = conversion.event
    payload = {"message_id": str(row.message_id), "conversion_id": row.pk, **(row.data or {})}
    event, _ = event_ingest(tenant=tenant, event=EventInput(
        name=name, recipients=(external,), cause_ref=f"conversion:{row.pk}", payload=payload))
    return event
