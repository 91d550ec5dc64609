"""Conversions API: POST /api/v1/messages/{id}/conversions (thin: parse, call the service, serialise)."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.serializers import StrictSerializer
from tracking.services.conversions import conversion_record


class ConversionSerializer(StrictSerializer):
    # value: a number or a decimal string ("19.90"); checked with the currency by the service.
    value = serializers.JSONField(required=False, default=None)
    currency = serializers.CharField(required=False, allow_blank=True, default="", max_length=8)
    occurred_at = serializers.DateTimeField(required=False, default=None)
    idempotency_key = serializers.CharField(required=False, default="", allow_blank=True)


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
        if at is not None and at.tzinfo is None:
            raise errors.ValidationFailed("occurred_at needs a UTC offset.", details={"field": "occurred_at"})
        conversion = conversion_record(tenant=request.user.tenant, message_id=message_id, value=data["value"],
                                       currency=data["currency"] or None, occurred_at=at, idempotency_key=key)
        return Response(conversion.as_dict(), status=status.HTTP_201_CREATED if conversion.created else status.HTTP_200_OK)
