"""/api/v1/costs (the roll-up), /api/v1/prices and /api/v1/cost-envelopes (a tenant's own rows).

Thin views: parse, check the scope, call one service or selector, serialise.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from comms.admin_export import csv_response
from comms.errors import ValidationFailed
from comms.serializers import StrictSerializer
from delivery.costs import envelopes, selectors, services
from delivery.costs.models import CostEnvelope, PriceEntry


class PriceSerializer(StrictSerializer):
    provider = serializers.CharField(max_length=64)
    channel = serializers.CharField(max_length=16)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    unit = serializers.CharField(max_length=16, required=False, default="message")
    price = serializers.CharField(max_length=40)  # parsed by the service: a negative price is a typed error
    currency = serializers.CharField(max_length=3, required=False, default="USD")


class EnvelopeSerializer(StrictSerializer):
    channel = serializers.CharField(max_length=16)
    monthly_budget = serializers.CharField(max_length=40, required=False, allow_null=True, default=None)
    currency = serializers.CharField(max_length=3, required=False, default="USD")
    alert_pct = serializers.IntegerField(required=False, default=80)
    allowed_categories = serializers.ListField(child=serializers.CharField(max_length=32), required=False,
                                               default=list, max_length=50)
    failover_price_cap = serializers.CharField(max_length=40, required=False, allow_null=True, default=None)


def price_representation(p: PriceEntry) -> dict:
    return {"id": p.pk, "provider": p.provider, "channel": p.channel, "country": p.country, "unit": p.unit,
            "price": str(p.price), "currency": p.currency, "global": p.tenant_id is None}


def envelope_representation(e: CostEnvelope) -> dict:
    now = timezone.now()
    used = envelopes.spent(tenant_id=e.tenant_id, channel=e.channel, now=now)
    return {"channel": e.channel, "monthly_budget": None if e.monthly_budget is None else str(e.monthly_budget),
            "currency": e.currency, "alert_pct": e.alert_pct, "allowed_categories": e.allowed_categories,
            "failover_price_cap": None if e.failover_price_cap is None else str(e.failover_price_cap),
            "spent_this_month": str(used),
            "percent_used": (round(float(used / e.monthly_budget * 100), 1) if e.monthly_budget else None)}


def _wants_csv(request) -> bool:
    """``?format=csv`` (or ``json``; anything else is a typed 400), else ``Accept: text/csv``."""
    fmt = request.GET.get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise ValidationFailed("format must be json or csv.", details={"format": fmt[:32],
                                                                           "allowed": ["json", "csv"]})
        return fmt == "csv"
    return "text/csv" in request.META.get("HTTP_ACCEPT", "")


class CostsApi(APIView):
    """GET ?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=channel,provider,campaign,template,day,country&format=json|csv"""

    required_scopes = {"GET": "messages:read"}

    def perform_content_negotiation(self, request, force=False):
        """JSON for DRF; the CSV is built here (DRF would 404 ``?format=csv``: it has no such renderer)."""
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[
        OpenApiParameter("format", {"type": "string", "enum": ["json", "csv"]}, description="Or Accept: text/csv.")])
    def get(self, request):
        csv_wanted = _wants_csv(request)
        first, last = selectors.parse_period(request.query_params.get("from"), request.query_params.get("to"),
                                             today=timezone.now().date())
        group_by = selectors.parse_group_by(request.query_params.get("group_by"))
        rows = selectors.cost_rollup(tenant_id=request.user.tenant.id, first=first, last=last, group_by=group_by)
        if csv_wanted:
            header = [*group_by, "currency", "messages", "units", "amount"]
            return csv_response(filename=f"costs-{first.isoformat()}-{last.isoformat()}.csv", header=header,
                                rows=([r[c] for c in header] for r in rows))
        return Response({"from": first.isoformat(), "to": last.isoformat(), "group_by": group_by, "results": rows})


class PricesApi(APIView):
    """The prices that apply to this tenant (its own and the global table); PUT sets one of its own."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rows = PriceEntry.objects.filter(tenant__in=[request.user.tenant]) | PriceEntry.objects.filter(tenant=None)
        return Response({"results": [price_representation(p) for p in rows.order_by("provider", "channel", "country")]})

    @extend_schema(request=PriceSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        s = PriceSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        entry = services.price_set(tenant=request.user.tenant, actor=request.user, **s.validated_data)
        return Response(price_representation(entry))


class EnvelopesApi(APIView):
    """A tenant's monthly envelopes per channel with this month's spend; PUT sets one."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rows = CostEnvelope.objects.filter(tenant=request.user.tenant).order_by("channel")
        return Response({"results": [envelope_representation(e) for e in rows]})

    @extend_schema(request=EnvelopeSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        s = EnvelopeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        envelope = services.envelope_set(tenant=request.user.tenant, actor=request.user, **s.validated_data)
        return Response(envelope_representation(envelope))
