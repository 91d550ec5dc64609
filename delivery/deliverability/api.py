"""/api/v1/sending-domains: CRUD, the records to publish, key rotation, a DNS check now.

Thin views: parse, check the scope, call one service, serialise. A domain is addressed by its id or by
its name (``/sending-domains/example.com``). Private keys never leave the server.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.serializers import StrictSerializer
from delivery.deliverability import dkim
from delivery.deliverability.domains import (
    LIVE, domain_normalise, sending_domain_create, sending_domain_delete, sending_domain_records, sending_domain_rotate,
)
from delivery.deliverability.models import DomainCheck, SendingDomain
from delivery.deliverability.monitor import sending_domain_check


class SendingDomainCreateSerializer(StrictSerializer):
    domain = serializers.CharField(max_length=300)
    private_key = serializers.CharField(max_length=20000, required=False, trim_whitespace=False,
                                        help_text="Import an existing key (PEM, RSA 1024+ bits or Ed25519).")
    selector = serializers.CharField(max_length=63, required=False, help_text="The imported key's selector.")

    def validate(self, attrs):
        if ("private_key" in attrs) != ("selector" in attrs):
            raise errors.ValidationFailed("private_key and selector go together.", details={"field": "selector"})
        return attrs


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def check_representation(check: DomainCheck | None) -> dict | None:
    if check is None:
        return None
    return {"checked_at": _iso(check.checked_at), "status": check.status, "regressions": check.regressions,
            "results": {name: {k: r.get(k) for k in ("status", "detail", "found")} for name, r in check.results.items()}}


def domain_representation(domain: SendingDomain, *, full: bool = False) -> dict:
    out = {"id": domain.pk, "domain": domain.domain, "unicode_domain": domain.unicode_domain,
           "return_path": domain.return_path, "check_status": domain.check_status,
           "checked_at": _iso(domain.checked_at), "created_at": _iso(domain.created_at),
           "keys": [{"selector": k.selector, "algorithm": k.algorithm, "state": k.state,
                     "created_at": _iso(k.created_at), "activated_at": _iso(k.activated_at),
                     "retire_at": _iso(k.retire_at)} for k in domain.keys.filter(state__in=LIVE)]}
    if full:
        out["records"] = sending_domain_records(domain)
        out["last_check"] = check_representation(domain.checks.first())
    return out


def _domain(request, domain_id: str) -> SendingDomain:
    rows = SendingDomain.objects.filter(tenant=request.user.tenant)
    if domain_id.isdigit() and len(domain_id) < 18:
        found = rows.filter(pk=int(domain_id)).first()
    else:
        try:
            found = rows.filter(domain=domain_normalise(domain_id)).first()
        except errors.InvalidDomain:
            found = None
    if found is None:
        raise errors.NotFound("No such sending domain.")
    return found


class SendingDomainListApi(APIView):
    """A tenant's sending domains; POST adds one with fresh RSA-2048 and Ed25519 keys (or an imported key)."""

    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(request=SendingDomainCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = SendingDomainCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        domain = sending_domain_create(tenant=request.user.tenant, actor=request.user, **serializer.validated_data)
        dkim.cache_clear()
        return Response(domain_representation(domain, full=True), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rows = SendingDomain.objects.filter(tenant=request.user.tenant)
        return Response({"results": [domain_representation(d) for d in rows]})


class SendingDomainDetailApi(APIView):
    required_scopes = {"GET": "messages:read", "DELETE": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, domain_id: str):
        return Response(domain_representation(_domain(request, domain_id), full=True))

    @extend_schema(responses={204: None})
    def delete(self, request, domain_id: str):
        sending_domain_delete(domain=_domain(request, domain_id), actor=request.user)
        dkim.cache_clear()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SendingDomainRecordsApi(APIView):
    """The DNS records to publish, copy-ready (each TXT also as its ≤255-byte strings and a zone-file line)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, domain_id: str):
        domain = _domain(request, domain_id)
        return Response({"domain": domain.domain, "records": sending_domain_records(domain)})


class SendingDomainRotateApi(APIView):
    """New keys under new selectors, pending: they sign once a check sees them published."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, domain_id: str):
        domain = _domain(request, domain_id)
        sending_domain_rotate(domain=domain, actor=request.user)
        return Response(domain_representation(domain, full=True))


class SendingDomainCheckApi(APIView):
    """Run the DNS checks now (also activates pending keys that are published)."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, domain_id: str):
        domain = _domain(request, domain_id)
        check = sending_domain_check(domain=domain, actor=request.user)
        domain.refresh_from_db()
        return Response({**domain_representation(domain), "check": check_representation(check)})
