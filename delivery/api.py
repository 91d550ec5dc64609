"""Messages API: thin views that parse, check scope, call one service, serialise."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils import timezone

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors, quotas
from comms.audit import client_ip
from comms.enums import Channel, Priority, Status
from comms.parsers import uuid_or_404
from delivery import health, routing, selectors
from delivery.costs import selectors as cost_selectors
from delivery.deliverability import pools
from delivery.models import WebhookEndpoint
from delivery.serializers import (
    WebhookEndpointSerializer,
    endpoint_representation,
    BulkCreateSerializer,
    BulkResultSerializer,
    MessageCreateSerializer,
    MessageDetailSerializer,
    MessageSerializer,
)
from delivery.services import SendSpec, message_bulk_enqueue, message_cancel, message_enqueue, message_requeue
from delivery.services import webhooks

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", location=OpenApiParameter.HEADER, required=False,
    description="Same key + same payload returns the first result; a different payload is 409.",
)


def _idempotency_key(request, data: dict) -> str | None:
    key = request.headers.get("Idempotency-Key") or data.pop("idempotency_key", "") or None
    data.pop("idempotency_key", None)
    if key is not None and not (1 <= len(key) <= 255):
        raise errors.ValidationFailed("Idempotency-Key must be 1-255 characters.")
    return key


def _spec(data: dict, **extra) -> SendSpec:
    return SendSpec(
        channel=data["channel"], subject=data["subject"], body=data["body"], body_html=data["body_html"],
        template_key=data["template"], variables=data["variables"], locale=data["locale"],
        priority=data["priority"], category=data["category"], scheduled_for=data["scheduled_for"],
        metadata=data["metadata"], **extra,
    )


class MessagePagination(CursorPagination):
    ordering = "-id"  # ids are UUIDv7: newest first, stable under concurrent inserts
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class MessageListCreateApi(APIView):
    required_scopes = {"POST": "messages:send", "GET": "messages:read"}

    @extend_schema(request=MessageCreateSerializer, responses={202: MessageSerializer, 200: MessageSerializer},
                   parameters=[IDEMPOTENCY_HEADER])
    def post(self, request):
        data = MessageCreateSerializer.validated(request.data)
        key = _idempotency_key(request, data)
        pool = pools.pool_override_check(principal=request.user, tenant_id=request.user.tenant.id,
                                         channel=data["channel"], name=data["pool"])
        spec = _spec(data, to=data["to"], recipient_id=data["recipient_id"], fallback=tuple(data["fallback_channels"]),
                     pool=pool)
        tenant = request.user.tenant
        with quotas.admitted(tenant_id=tenant.id, channel=spec.channel, count=1, now=timezone.now(),
                             always=spec.priority == Priority.P0,  # an emergency is counted, never refused
                             replay=lambda: selectors.idempotency_key_used(tenant_id=tenant.id, key=key)) as admission:
            message, created = message_enqueue(tenant=tenant, spec=spec, idempotency_key=key)
            if not created:
                admission.refund()  # a replay returns the first message: nothing new was accepted
        return Response(MessageSerializer(message).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="v1_messages_list",
        responses=inline_serializer("MessagePage", {
            "next": drf_serializers.URLField(allow_null=True), "previous": drf_serializers.URLField(allow_null=True),
            "results": MessageSerializer(many=True)}),
        parameters=[
            OpenApiParameter("status", enum=Status.values), OpenApiParameter("channel", enum=Channel.values),
            OpenApiParameter("recipient", description="Address or recipient external id"),
            OpenApiParameter("batch", OpenApiTypes.UUID, description="Bulk batch id"),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 10_000},
                             description="Page size, 1-500 (default 50; larger asks get 500)"),
            OpenApiParameter("cursor", str, description="Opaque cursor from next/previous"),
        ],
    )
    def get(self, request):
        params = request.query_params
        if "limit" in params and not (params["limit"].isdigit() and 1 <= int(params["limit"]) <= 10_000):
            raise errors.ValidationFailed("limit must be a whole number from 1 (at most 500 are returned).")
        if "batch" in params:
            try:
                uuid.UUID(params["batch"])
            except ValueError:
                raise errors.ValidationFailed("batch must be a UUID.") from None
        for name, allowed in (("status", Status.values), ("channel", Channel.values)):
            if name in params and params[name] not in allowed:
                raise errors.ValidationFailed(f"Unknown {name} '{params[name]}'.", details={"allowed": allowed})
        queryset = selectors.message_list(
            tenant=request.user.tenant, status=params.get("status"), channel=params.get("channel"),
            recipient=params.get("recipient"), batch=params.get("batch"),
        )
        paginator = MessagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        costs = cost_selectors.message_costs([m.id for m in page])  # the page's costs in one query
        return paginator.get_paginated_response(MessageSerializer(page, many=True, context={"costs": costs}).data)


class MessageDetailApi(APIView):
    required_scopes = {"GET": "messages:read", "DELETE": "messages:send"}

    @extend_schema(responses=MessageDetailSerializer)
    def get(self, request, message_id: str):
        message = selectors.message_get(tenant=request.user.tenant, message_id=uuid_or_404(message_id))
        return Response(MessageDetailSerializer(message).data)

    @extend_schema(responses={200: MessageSerializer})
    def delete(self, request, message_id: str):
        message = message_cancel(tenant=request.user.tenant, message_id=uuid_or_404(message_id),
                                 actor=request.user, ip=client_ip(request))
        return Response(MessageSerializer(message).data)


class MessageRequeueApi(APIView):
    """Take a message out of the DLQ (dead) or failed state and send it again."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=MessageSerializer)
    def post(self, request, message_id: str):
        message = message_requeue(tenant=request.user.tenant, message_id=uuid_or_404(message_id),
                                  reason=f"requeued via API key {request.user.api_key.prefix}",
                                  actor=request.user, ip=client_ip(request))
        return Response(MessageSerializer(message).data)


class MessageBulkApi(APIView):
    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=BulkCreateSerializer, responses={202: BulkResultSerializer, 200: BulkResultSerializer},
                   parameters=[IDEMPOTENCY_HEADER])
    def post(self, request):
        payload = request.data
        recipients = payload.get("recipients") if isinstance(payload, dict) else None
        limit = settings.COMMS_BULK_MAX_RECIPIENTS
        if isinstance(recipients, list) and len(recipients) > limit:  # refuse before validating 100k+ rows
            raise errors.BulkTooLarge(f"{len(recipients)} recipients; at most {limit} per call.",
                                      details={"count": len(recipients), "limit": limit})
        if isinstance(recipients, list):  # the tenant's plan may allow fewer (422 COMMS_TENANT_QUOTA)
            quotas.bulk_size_check(tenant_id=request.user.tenant.id, count=len(recipients))
        serializer = BulkCreateSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        key = _idempotency_key(request, data)
        for index, entry in enumerate(data["recipients"]):
            unknown = set(entry) - {"to", "recipient_id", "variables", "metadata"}
            if unknown:
                raise errors.UnknownField(f"recipients[{index}] has unknown fields: {', '.join(sorted(unknown))}.",
                                          details={"index": index, "fields": sorted(unknown)})
        # Tenant budgets: a bulk call is all or nothing (docs/api.md): over the plan's size → 422, over
        # today's channel budget → 429 and no row accepted; rows skipped as invalid are given back.
        tenant = request.user.tenant
        with quotas.admitted(tenant_id=tenant.id, channel=data["channel"], count=len(data["recipients"]),
                             now=timezone.now(), always=data["priority"] == Priority.P0,
                             replay=lambda: selectors.idempotency_key_used(
                                 tenant_id=tenant.id, key=key, bulk=True)) as admission:
            result = message_bulk_enqueue(
                tenant=tenant, spec=_spec(data), recipients=data["recipients"],
                idempotency_key=key, skip_invalid=data["skip_invalid"],
            )
            admission.refund(admission.count - result.batch.accepted if result.created else admission.count)
        return Response(BulkResultSerializer(result).data,
                        status=status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK)


class WebhookEndpointListApi(APIView):
    """Subscriber URLs of the webhook channel. The signing secret is shown once, at creation."""

    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(request=WebhookEndpointSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhooks.endpoint_create(tenant=request.user.tenant, actor=request.user,
                                                    **serializer.validated_data)
        return Response({**endpoint_representation(endpoint), "secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(tenant=request.user.tenant).order_by("id")
        return Response({"results": [endpoint_representation(e) for e in endpoints]})


class WebhookEndpointRotateApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        secret = webhooks.endpoint_rotate(endpoint=endpoint, actor=request.user)
        endpoint.refresh_from_db()
        return Response({**endpoint_representation(endpoint), "secret": secret})


class WebhookEndpointDetailApi(APIView):
    required_scopes = {"DELETE": "admin"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        webhooks.endpoint_disable(endpoint=endpoint, reason="disabled via API", actor=request.user)
        endpoint.refresh_from_db()
        return Response(endpoint_representation(endpoint))


def _endpoint(request, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(tenant=request.user.tenant, pk=endpoint_id).first()
    if endpoint is None:
        raise errors.NotFound("No such webhook endpoint.")
    return endpoint


class ProviderHealthApi(APIView):
    """Circuit state, success rates (1 h / 24 h) and latency of every provider this tenant can use."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        results = []
        for channel in Channel.values:
            for spec in routing.provider_specs(tenant_id=request.user.tenant.id, channel=channel):
                results.append({"channel": channel, "rate_limit_per_s": spec.rate, **health.snapshot(spec.name)})
        return Response({"results": results})
