"""Deliverability endpoints: the compliance self-test (admin scope)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery.deliverability.selftest import compliance_selftest


class SelftestQuery(serializers.Serializer):
    sample = serializers.IntegerField(required=False, min_value=1, max_value=5000)


class ComplianceSelftestApi(APIView):
    """Today's sample of outgoing mail and SMS against the compliance rules; 200 with ``ok`` either way."""

    required_scopes = {"GET": "admin"}

    @extend_schema(parameters=[SelftestQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = SelftestQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(compliance_selftest(sample=query.validated_data.get("sample"),
                                            tenant_id=request.user.tenant.id))
