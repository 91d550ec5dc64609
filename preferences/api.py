"""Service API for preferences, subscriptions, consent export, erasure, import and suppression."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.models import Recipient
from comms.parsers import JSONParser
from preferences import selectors, services
from preferences.serializers import (
    PreferencesPutSerializer, SubscribeSerializer, SuppressionSerializer, UnsubscribeSerializer,
)
from preferences.subscriptions import subscriptions_of


def _recipient(request, external_id: str) -> Recipient:
    recipient = Recipient.objects.select_related("tenant").filter(tenant=request.user.tenant,
                                                                  external_id=external_id).first()
    if recipient is None:
        raise errors.RecipientNotFound(details={"recipient_id": external_id})
    return recipient


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PreferencesApi(APIView):
    """GET: every category × channel with the value in force; PUT: change some of them."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(responses=dict)
    def get(self, request, external_id: str):
        return Response(selectors.preferences_view(recipient=_recipient(request, external_id)))

    @extend_schema(request=PreferencesPutSerializer, responses=dict)
    def put(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        data = _valid(PreferencesPutSerializer, request.data)
        services.preferences_change(recipient=recipient, data=data)
        return Response(selectors.preferences_view(recipient=recipient))


class SubscriptionsApi(APIView):
    """GET: the recipient's list subscriptions; POST: subscribe (double opt-in where required)."""

    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(responses=dict)
    def get(self, request, external_id: str):
        return Response({"results": subscriptions_of(recipient=_recipient(request, external_id))})

    @extend_schema(request=SubscribeSerializer, responses={200: dict, 202: dict},
                   description="200 when subscribed at once; 202 when a double opt-in confirmation was sent.")
    def post(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        data = _valid(SubscribeSerializer, request.data)
        sub = services.subscription_request(recipient=recipient, **data)
        return Response({"list_id": sub.list_id, "channel": sub.channel, "status": sub.status,
                         "double_opt_in_confirmed": sub.double_opt_in_confirmed},
                        status=202 if sub.status == "pending" else 200)


class UnsubscribeApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=UnsubscribeSerializer, responses=dict)
    def post(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        data = _valid(UnsubscribeSerializer, request.data)
        services.unsubscribe(recipient=recipient, category=data["category"] or None, channel=data["channel"],
                             source=data["source"])
        return Response(selectors.preferences_view(recipient=recipient))


class ConsentExportApi(APIView):
    """The consent ledger of a recipient, oldest first (GDPR art. 7(1): demonstrate consent)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=dict)
    def get(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        return Response({"recipient_id": recipient.external_id,
                         "results": selectors.consent_history(recipient=recipient)})


class EraseApi(APIView):
    """GDPR erasure (art. 17). Irreversible; answers what was done."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=dict)
    def post(self, request, external_id: str):
        done = services.recipient_erase(recipient=_recipient(request, external_id))
        return Response({"erased": True, **done})


class CsvParser(parsers.BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise errors.ValidationFailed("The CSV must be UTF-8.") from None


class PreferencesImportApi(APIView):
    """CRM import, "most restrictive wins". Body: text/csv, or JSON {"csv": "..."}. ?atomic=true
    imports nothing when any row is bad (422 COMMS_IMPORT_FAILED with every bad row)."""

    required_scopes = {"POST": "admin"}

    def get_parsers(self):
        return [CsvParser(), JSONParser()]

    @extend_schema(request={"text/csv": str}, responses=dict)
    def post(self, request):
        text = request.data if isinstance(request.data, str) else (request.data or {}).get("csv")
        if not isinstance(text, str) or not text.strip():
            raise errors.ValidationFailed("Send the CSV as text/csv or as JSON {\"csv\": \"...\"}.")
        atomic = request.query_params.get("atomic", "").lower() in ("1", "true", "yes")
        report = services.preferences_import(tenant=request.user.tenant, csv_text=text, atomic=atomic)
        return Response(report.as_dict(), status=200)


class SuppressionsApi(APIView):
    """POST adds an address to the suppression list; GET ?channel=&address= says whether it is on it."""

    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(responses=dict, parameters=[
        OpenApiParameter("channel", str, enum=["email", "sms", "push", "voice"], required=True),
        OpenApiParameter("address", {"type": "string", "minLength": 1, "pattern": "\\S"}, required=True)])
    def get(self, request):
        channel, address = request.query_params.get("channel", ""), request.query_params.get("address", "")
        if channel not in ("email", "sms", "push", "voice") or not address:
            raise errors.ValidationFailed("Give ?channel=email|sms|push|voice&address=…")
        return Response({"suppressed": services.is_suppressed(tenant=request.user.tenant, channel=channel,
                                                              address=address)})

    @extend_schema(request=SuppressionSerializer, responses={201: dict})
    def post(self, request):
        data = _valid(SuppressionSerializer, request.data)
        row = services.suppression_add(tenant=request.user.tenant, **data)
        return Response({"channel": row.channel, "reason": row.reason, "expires_at": row.expires_at,
                         "address_hash": row.address_hash}, status=201)

