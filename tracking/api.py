"""Anomaly alerts and a recipient's engagement scores over the API (issue 22 items 5 and 6).

GET /api/v1/anomalies and GET /api/v1/anomalies/{id} (messages:read), POST
/api/v1/anomalies/{id}/acknowledge (admin), GET /api/v1/recipients/{external_id}/engagement
(messages:read). A key sees the system-wide alerts (providers, queues, campaigns) and its own tenant's
(SMS spend), never another tenant's.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.audit import client_ip
from comms.models import Recipient
from tracking.models import AnomalyAlert, RecipientEngagement
from tracking.services.anomaly import KINDS
from tracking.services.anomaly_alerts import (
    STATES,
    AnomalyFilterInvalid,
    AnomalyNotFound,
    anomaly_alert_acknowledge,
    anomaly_alert_list,
)


class AnomalyAlertSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()

    class Meta:
        model = AnomalyAlert
        fields = ["id", "series", "kind", "labels", "status", "hour", "observed", "baseline", "sigma", "z", "volume",
                  "tenant_id", "created_at", "resolved_at", "acknowledged_at", "acknowledged_by", "evidence"]

    def get_status(self, alert: AnomalyAlert) -> str:
        return "open" if alert.resolved_at is None else "resolved"

    def get_labels(self, alert: AnomalyAlert) -> dict[str, str]:
        return (alert.evidence or {}).get("labels") or {}


class AnomalyPagination(CursorPagination):
    ordering = ("-hour", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


def _instant(raw: str | None, field: str, *, end: bool = False) -> datetime | None:
    """An ISO date (a whole UTC day; `to` includes it) or an ISO date-time with an offset."""
    if raw is None or raw == "":
        return None
    try:  # a bare date first: parse_datetime reads "2026-01-07" as its midnight
        day = parse_date(raw) if len(raw) == 10 else None
        at = None if day else parse_datetime(raw)
    except ValueError:
        at = day = None
    if at is None and day is None:
        raise AnomalyFilterInvalid(f"{field} must be an ISO date or date-time.", details={"field": field})
    if day is not None:
        try:
            return datetime.combine(day, time.min, tzinfo=dt_timezone.utc) + timedelta(days=1 if end else 0)
        except OverflowError:  # to=9999-12-31
            return datetime.max.replace(tzinfo=dt_timezone.utc)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt_timezone.utc)

PAGE = inline_serializer("AnomalyAlertPage", {
    "next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
    "results": AnomalyAlertSerializer(many=True)})


class AnomalyListApi(APIView):
    """Anomaly alerts, newest hour first, with their evidence."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="v1_anomalies_list", responses=PAGE, parameters=[
        OpenApiParameter("status", enum=list(STATES), description="Default all."),
        OpenApiParameter("kind", enum=sorted(KINDS), description="Series kind."),
        OpenApiParameter("series", str, description="Exact series key, or a prefix ending in * "
                                                    "(e.g. failure_code:twilio:*)."),
        OpenApiParameter("from", str, description="ISO date or date-time: alerts whose hour is at or after it."),
        OpenApiParameter("to", str, description="ISO date (included) or date-time (excluded)."),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 200},
                         description="Page size, 1-200 (default 50)."),
        OpenApiParameter("cursor", str, description="Opaque cursor from next/previous."),
    ])
    def get(self, request):
        q = request.query_params
        if "limit" in q and not (q["limit"].isdigit() and 1 <= int(q["limit"]) <= 200):
            raise AnomalyFilterInvalid("limit must be a whole number from 1 to 200.", details={"field": "limit"})
        kind = q.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise AnomalyFilterInvalid(f"Unknown kind '{kind[:32]}'.",
                                       details={"field": "kind", "allowed": sorted(KINDS)})
        series = q.get("series") or None
        if series is not None and len(series) > 200:
            raise AnomalyFilterInvalid("series is longer than 200 characters.", details={"field": "series"})
        queryset = anomaly_alert_list(
            tenant_id=request.user.tenant.id, state=q.get("status") or "all", kind=kind, series=series,
            since=_instant(q.get("from"), "from"), until=_instant(q.get("to"), "to", end=True))
        paginator = AnomalyPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(AnomalyAlertSerializer(page, many=True).data)


def _alert_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise AnomalyNotFound(details={"id": raw[:32]})
    return int(raw)


class AnomalyDetailApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="v1_anomalies_retrieve", responses=AnomalyAlertSerializer)
    def get(self, request, alert_id: str):
        alert = anomaly_alert_list(tenant_id=request.user.tenant.id).filter(pk=_alert_id(alert_id)).first()
        if alert is None:
            raise AnomalyNotFound(details={"id": alert_id})
        return Response(AnomalyAlertSerializer(alert).data)


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class AnomalyAcknowledgeApi(APIView):
    """Record that someone is on it (who and when, audited); 409 when it already is."""

    required_scopes = {"POST": "admin"}

    @extend_schema(operation_id="v1_anomalies_acknowledge", request=AcknowledgeSerializer,
                   responses=AnomalyAlertSerializer)
    def post(self, request, alert_id: str):
        data = request.data if isinstance(request.data, dict) else {}
        serializer = AcknowledgeSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        alert = anomaly_alert_acknowledge(alert_id=_alert_id(alert_id), actor=request.user,
                                          tenant_id=request.user.tenant.id,
                                          note=serializer.validated_data.get("note", ""), ip=client_ip(request))
        return Response(AnomalyAlertSerializer(alert).data)


class EngagementSerializer(serializers.Serializer):
    recipient_id = serializers.CharField(help_text="The recipient's external id.")
    engagement_score = serializers.FloatField(help_text="0..1: recent and frequent engagement.")
    reengagement_score = serializers.FloatField(help_text="0..1: engaged before, lapsed since.")
    best_channel = serializers.CharField(allow_blank=True, help_text="The channel they engage on ('' if none).")
    channels = serializers.DictField(child=serializers.DictField(), help_text="{channel: {sent, engaged, rate}}")
    last_engaged_at = serializers.DateTimeField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True, help_text="null: never scored (no send in the window).")


class RecipientEngagementApi(APIView):
    """The stored engagement scores and channel recommendation of one recipient (tracking.scores)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="v1_recipients_engagement", responses=EngagementSerializer)
    def get(self, request, external_id: str):
        recipient = Recipient.objects.filter(tenant=request.user.tenant, external_id=external_id[:255]).first()
        if recipient is None or len(external_id) > 255:
            raise errors.NotFound("No such recipient.", details={"recipient_id": external_id[:64]})
        row = RecipientEngagement.objects.filter(recipient_id=recipient.pk).first()
        return Response(EngagementSerializer({
            "recipient_id": recipient.external_id, "engagement_score": row.score if row else 0.0,
            "reengagement_score": row.reengagement if row else 0.0, "best_channel": row.best_channel if row else "",
            "channels": row.channels if row else {}, "last_engaged_at": row.last_engaged_at if row else None,
            "computed_at": row.computed_at if row else None}).data)
