"""Journeys API (/api/v1/journeys…): thin views over comms.router.journeys and its selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.audit import client_ip
from comms.parsers import uuid_or_404
from comms.router.journey_definition import journey_validate
from comms.router.journey_selectors import journey_runs, journey_stats, run_timeline
from comms.router.journey_simulate import journey_simulate
from comms.router.journeys import (
    journey_enrol, journey_enrol_segment, journey_migrate_runs, journey_save, journey_set_status,
)
from comms.router.models import Journey, JourneyRun
from comms.serializers import StrictSerializer


class JourneyCreateSerializer(StrictSerializer):
    key = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    definition = serializers.JSONField()
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class JourneyVersionSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    definition = serializers.JSONField()
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class DefinitionSerializer(StrictSerializer):
    definition = serializers.JSONField()


class EnrolSerializer(StrictSerializer):
    recipient = serializers.CharField(max_length=255)
    payload = serializers.DictField(required=False, default=dict)


class MigrateSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class SimEventSerializer(StrictSerializer):
    name = serializers.CharField(max_length=128)
    at = serializers.DateTimeField()
    payload = serializers.DictField(required=False, default=dict)


class SimulateSerializer(StrictSerializer):
    recipient = serializers.CharField(max_length=255)
    events = SimEventSerializer(many=True, required=False, default=list)
    start_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    enrol = serializers.BooleanField(required=False, default=False)
    payload = serializers.DictField(required=False, default=dict)
    outcomes = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                     default=dict, help_text="send step id → outcomes to assume, e.g. ['opened'].")
    definition = serializers.JSONField(required=False, allow_null=True, default=None)


def _journey(request, key: str) -> Journey:
    journey = Journey.objects.filter(tenant=request.user.tenant, key=key).select_related("active_version").first()
    if journey is None:
        raise errors.NotFound(f"No journey '{key}'.")
    return journey


def journey_representation(journey: Journey, warnings: list | None = None) -> dict:
    active = journey.active_version
    body = {"key": journey.key, "name": journey.name, "status": journey.status,
            "active_version": active.version if active else None, "definition": active.definition if active else None,
            "versions": list(journey.versions.order_by("-version").values("version", "notes", "created_at")),
            "created_at": journey.created_at, "updated_at": journey.updated_at}
    if warnings is not None:
        body["warnings"] = warnings
    return body


def _parse(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class JourneyListApi(APIView):
    """GET lists journeys; POST creates one (or adds a version when the key exists)."""

    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        journeys = Journey.objects.filter(tenant=request.user.tenant).select_related("active_version").order_by("key")
        return Response({"results": [journey_representation(j) for j in journeys]})

    @extend_schema(request=JourneyCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        data = _parse(JourneyCreateSerializer, request.data)
        version, warnings = journey_save(tenant=request.user.tenant, key=data["key"], name=data["name"] or None,
                                         definition=data["definition"], notes=data["notes"], actor=request.user,
                                         ip=client_ip(request))
        return Response(journey_representation(version.journey, warnings), status=status.HTTP_201_CREATED)


class JourneyValidateApi(APIView):
    """Check a definition without saving it: 200 with warnings, or the typed error."""

    required_scopes = {"POST": "messages:read"}

    @extend_schema(request=DefinitionSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = _parse(DefinitionSerializer, request.data)
        _, warnings = journey_validate(data["definition"], tenant=request.user.tenant)
        return Response({"valid": True, "warnings": warnings})


class JourneyDetailApi(APIView):
    """GET one journey; PUT stores a new version (running runs stay on theirs)."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        return Response(journey_representation(_journey(request, key)))

    @extend_schema(request=JourneyVersionSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, key: str):
        data = _parse(JourneyVersionSerializer, request.data)
        version, warnings = journey_save(tenant=request.user.tenant, key=key, name=data["name"] or None,
                                         definition=data["definition"], notes=data["notes"], actor=request.user,
                                         ip=client_ip(request))
        return Response(journey_representation(version.journey, warnings))


class JourneyVersionApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str, version: int):
        found = _journey(request, key).versions.filter(version=version).first()
        if found is None:
            raise errors.NotFound(f"Journey '{key}' has no version {version}.")
        return Response({"version": found.version, "definition": found.definition, "notes": found.notes,
                         "created_at": found.created_at})


class JourneyStatusApi(APIView):
    """POST …/pause, …/resume, …/archive."""

    required_scopes = {"POST": "admin"}
    target = ""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        journey = journey_set_status(journey=_journey(request, key), status=self.target, actor=request.user,
                                     ip=client_ip(request))
        return Response(journey_representation(journey))


class JourneyMigrateApi(APIView):
    """Move live runs of older versions onto the active (or given) version."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=MigrateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        data = _parse(MigrateSerializer, request.data)
        return Response(journey_migrate_runs(journey=_journey(request, key), to_version=data["version"],
                                             actor=request.user, ip=client_ip(request)))


class JourneyEnrolApi(APIView):
    """Enrol one recipient now (201 with the run), whatever the journey's entry."""

    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=EnrolSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, key: str):
        data = _parse(EnrolSerializer, request.data)
        run = journey_enrol(journey=_journey(request, key), recipient_id=data["recipient"], payload=data["payload"],
                            actor=request.user)
        return Response(run_timeline(run=run), status=status.HTTP_201_CREATED)


class JourneyEnrolSegmentApi(APIView):
    """Enter every recipient of the journey's entry segment."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request, key: str):
        created = journey_enrol_segment(journey=_journey(request, key))
        return Response({"entered": created}, status=status.HTTP_202_ACCEPTED)


class JourneyRunsApi(APIView):
    """Runs, newest first: ?state=waiting&recipient=ada&limit=100&offset=0."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", 100))))
            offset = max(0, int(request.query_params.get("offset", 0)))
        except ValueError:
            raise errors.ValidationFailed("limit and offset are integers.") from None
        state = request.query_params.get("state") or None
        if state and state not in JourneyRun.State.values:
            raise errors.ValidationFailed(f"Unknown state '{state}'.", details={"allowed": JourneyRun.State.values})
        runs = journey_runs(journey=_journey(request, key), state=state,
                            recipient=request.query_params.get("recipient") or None)[offset:offset + limit]
        return Response({"results": [{
            "id": str(r.id), "recipient": r.recipient.external_id, "version": r.version.version, "state": r.state,
            "step": r.step, "next_due_at": r.next_due_at, "waiting_for": r.waiting_for, "entered_at": r.entered_at,
            "exited_at": r.exited_at, "exit_reason": r.exit_reason} for r in runs], "limit": limit, "offset": offset})


class JourneyRunApi(APIView):
    """One run's timeline (every step it executed, with its message ids)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str, run_id: str):
        run = (JourneyRun.objects.filter(journey=_journey(request, key), pk=uuid_or_404(run_id, "No such run."))
               .select_related("journey", "version", "recipient").first())
        if run is None:
            raise errors.NotFound("No such run.")
        return Response(run_timeline(run=run))


class JourneyStatsApi(APIView):
    """Per step: entered, waiting, outcome counts; ?version=n (default: the active version)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        journey = _journey(request, key)
        version = None
        if request.query_params.get("version"):
            raw = request.query_params["version"]
            version = journey.versions.filter(version=int(raw)).first() if raw.isdigit() else None
            if version is None:
                raise errors.NotFound(f"Journey '{key}' has no version {raw}.")
        return Response(journey_stats(journey=journey, version=version))


class JourneySimulateApi(APIView):
    """Dry run on simulated time: the path and the messages it would send. Nothing is written."""

    required_scopes = {"POST": "messages:read"}

    @extend_schema(request=SimulateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str | None = None):
        data = _parse(SimulateSerializer, request.data)
        journey = _journey(request, key) if key else None
        if journey is None and data["definition"] is None:
            raise errors.ValidationFailed("Give a definition to simulate.", details={"field": "definition"})
        return Response(journey_simulate(
            tenant=request.user.tenant, journey=journey, recipient_id=data["recipient"], events=data["events"],
            definition=data["definition"], start_at=data["start_at"], enrol=data["enrol"], payload=data["payload"],
            outcomes=data["outcomes"]))
