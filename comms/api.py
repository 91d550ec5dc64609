"""Kernel API: the recipient directory and readiness."""

from __future__ import annotations

import zoneinfo

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.audit import client_ip
from comms.addresses import normalise_email, normalise_phone
from comms.models import Recipient
from comms.readiness import stores_check
from comms.serializers import (
    DeviceSerializer,
    DeviceUnregisterSerializer,
    RecipientOutputSerializer,
    RecipientSerializer,
    device_representation,
)
from comms.services import device_register, device_unregister, recipient_upsert


class RecipientApi(APIView):
    """PUT creates or replaces a recipient; GET reads it. Recipients are per tenant."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(request=RecipientSerializer, responses={200: RecipientOutputSerializer, 201: RecipientOutputSerializer})
    def put(self, request, external_id: str):
        if len(external_id) > 255:
            raise errors.ValidationFailed("external_id is longer than 255 characters.")
        serializer = RecipientSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("email"):
            data["email"] = normalise_email(data["email"])
        if data.get("phone"):
            data["phone"] = normalise_phone(data["phone"])
        if data.get("timezone") and data["timezone"] not in zoneinfo.available_timezones():
            raise errors.ValidationFailed(f"Unknown time zone '{data['timezone']}'.", details={"field": "timezone"})
        recipient, created = recipient_upsert(tenant=request.user.tenant, external_id=external_id, data=data,
                                              actor=request.user, ip=client_ip(request))
        return Response(RecipientOutputSerializer(recipient).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=RecipientOutputSerializer)
    def get(self, request, external_id: str):
        recipient = Recipient.objects.filter(tenant=request.user.tenant, external_id=external_id).first()
        if recipient is None:
            raise errors.NotFound("No such recipient.")
        return Response(RecipientOutputSerializer(recipient).data)


class HealthApi(APIView):
    """Readiness: PostgreSQL and Redis both answer."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request):
        checks = stores_check()
        healthy = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if healthy else "degraded", "checks": checks},
                        status=200 if healthy else 503)


class RecipientDevicesApi(APIView):
    """A recipient's push tokens: the app registers one per install (upsert; moves between users)."""

    required_scopes = {"GET": "messages:read", "POST": "messages:send"}

    def _recipient(self, request, external_id: str) -> Recipient:
        recipient = Recipient.objects.filter(tenant=request.user.tenant, external_id=external_id).first()
        if recipient is None:
            raise errors.RecipientNotFound(details={"recipient_id": external_id})
        return recipient

    @extend_schema(request=DeviceSerializer, responses={201: dict, 200: dict})
    def post(self, request, external_id: str):
        serializer = DeviceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = device_register(recipient=self._recipient(request, external_id),
                                          **serializer.validated_data, actor=request.user,
                                          ip=client_ip(request))
        return Response(device_representation(device), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=dict)
    def get(self, request, external_id: str):
        devices = self._recipient(request, external_id).devices.order_by("-last_seen_at")
        return Response({"results": [device_representation(d) for d in devices]})


class DeviceUnregisterApi(APIView):
    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=DeviceUnregisterSerializer, responses=dict)
    def post(self, request):
        serializer = DeviceUnregisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not device_unregister(tenant=request.user.tenant, token=serializer.validated_data["token"],
                                 actor=request.user, ip=client_ip(request),
                                 reason="token unregistered via API"):
            raise errors.NotFound("No such device token.")
        return Response({"unregistered": True})
