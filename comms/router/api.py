"""Events, routing rules and schedules API: thin views over the router's services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.audit import client_ip
from comms.router.events import EventInput, event_dry_run, event_ingest
from comms.router.models import Event, RoutingRule, RoutingRuleVersion, Schedule
from comms.router.rules import rule_activate, rule_save, rule_validate
from comms.router.schedules import schedule_cancel, schedule_create, schedule_update
from comms.router.serializers import (
    DryRunSerializer, EventBatchSerializer, EventSerializer, RuleActivateSerializer, RuleSerializer,
    ScheduleSerializer, ScheduleUpdateSerializer,
)
from comms.parsers import uuid_or_404


def event_input(data: dict, idempotency_key: str = "") -> EventInput:
    return EventInput(name=data["name"], recipients=tuple(data["recipients"]), audience=data["audience"],
                      actor=data["actor"], cause_ref=data["cause_ref"] or idempotency_key,
                      category=data["category"], priority=data["priority"], payload=data["payload"])


def event_representation(event: Event) -> dict:
    body = {
        "id": str(event.id), "name": event.name, "cause_ref": event.cause_ref, "state": event.state,
        "rule_version": event.rule_version.version if event.rule_version_id else None,
        "produced": event.produced, "outcome": event.outcome, "created_at": event.created_at.isoformat(),
    }
    if event.state == Event.State.NO_ROUTE:
        body.update(code=errors.NoRoute.code, message=f"No routing rule for '{event.name}'; the event was stored.")
    elif event.state == Event.State.DUPLICATE:
        body.update(code=errors.Deduplicated.code, message=errors.Deduplicated.default_message)
    return body


def event_parse(raw) -> EventInput:
    """One event body as the API checks it (the batch and the admin's dry run parse the same way)."""
    serializer = EventSerializer(data=raw)
    serializer.is_valid(raise_exception=True)
    return event_input(dict(serializer.validated_data))


class EventsApi(APIView):
    """Post a domain event; its routing rule decides what is sent. 202 (200 for a replay)."""

    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=EventSerializer, responses={202: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = EventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "")[:255]
        event, created = event_ingest(tenant=request.user.tenant, event=event_input(dict(serializer.validated_data), key))
        return Response(event_representation(event), status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class EventBatchApi(APIView):
    """Up to 500 events; each is routed in its own transaction and answered at its index."""

    required_scopes = {"POST": "messages:send"}

    @extend_schema(request=EventBatchSerializer, responses={202: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = EventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = []
        for index, raw in enumerate(serializer.validated_data["events"]):
            try:
                event, created = event_ingest(tenant=request.user.tenant, event=event_parse(raw))
            except Exception as exc:  # one bad event must not sink the rest of the batch
                err = errors.to_comms_error(exc)
                if err is None:
                    raise
                results.append({"index": index, "error": err.as_dict()})
                continue
            results.append({"index": index, "created": created, **event_representation(event)})
        return Response({"results": results}, status=status.HTTP_202_ACCEPTED)


class EventDetailApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, event_id: str):
        event = Event.objects.filter(tenant=request.user.tenant, pk=uuid_or_404(event_id, "No such event.")).first()
        if event is None:
            raise errors.NotFound("No such event.")
        return Response(event_representation(event))


def rule_representation(rule: RoutingRule) -> dict:
    active = rule.active_version
    return {
        "event_name": rule.event_name, "description": rule.description,
        "active_version": active.version if active else None, "definition": active.definition if active else None,
        "versions": list(rule.versions.order_by("-version").values("version", "notes", "created_at")),
    }


class RuleListApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rules = RoutingRule.objects.filter(tenant=request.user.tenant).select_related("active_version").order_by(
            "event_name")
        return Response({"results": [rule_representation(r) for r in rules]})


class RuleDetailApi(APIView):
    """PUT stores a new version of the rule for an event name (validated; unchanged → same version)."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(request=RuleSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, event_name: str):
        serializer = RuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = rule_save(tenant=request.user.tenant, event_name=event_name, definition=data["definition"],
                            notes=data["notes"], description=data["description"], actor=request.user,
                            ip=client_ip(request))
        return Response(rule_representation(version.rule), status=status.HTTP_200_OK)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, event_name: str):
        rule = RoutingRule.objects.filter(tenant=request.user.tenant, event_name=event_name).first()
        if rule is None:
            raise errors.NotFound("No rule for this event name.")
        return Response(rule_representation(rule))


class RuleActivateApi(APIView):
    """POST {"version": n}: make an earlier (or later) stored version the active one (rollback)."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=RuleActivateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, event_name: str):
        serializer = RuleActivateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = RoutingRule.objects.filter(tenant=request.user.tenant, event_name=event_name).first()
        if rule is None:
            raise errors.NotFound("No rule for this event name.")
        rule_activate(rule=rule, version=serializer.validated_data["version"], actor=request.user,
                      ip=client_ip(request))
        rule.refresh_from_db()
        return Response(rule_representation(rule))


class DryRunApi(APIView):
    """What a sample event would produce under the active rule (or an unsaved definition)."""

    required_scopes = {"POST": "messages:read"}

    @extend_schema(request=DryRunSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        serializer = DryRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = event_parse(data["event"])
        version = None
        if data["definition"] is not None:
            version = RoutingRuleVersion(version=0, definition=rule_validate(data["definition"]))
        return Response(event_dry_run(tenant=request.user.tenant, event=event, version=version))


def schedule_representation(schedule: Schedule) -> dict:
    return {"id": schedule.pk, "name": schedule.name, "kind": schedule.kind, "cron": schedule.cron,
            "timezone": schedule.timezone, "run_at": schedule.run_at, "next_run_at": schedule.next_run_at,
            "last_run_at": schedule.last_run_at, "run_count": schedule.run_count, "last_error": schedule.last_error,
            "cancelled_at": schedule.cancelled_at, "event": schedule.event}


class ScheduleListApi(APIView):
    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(request=ScheduleSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        schedule = schedule_create(tenant=request.user.tenant, name=data["name"], event=data["event"],
                                   cron=data["cron"], run_at=data["run_at"], tz=data["timezone"],
                                   actor=request.user, ip=client_ip(request))
        return Response(schedule_representation(schedule), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        schedules = Schedule.objects.filter(tenant=request.user.tenant).order_by("id")
        return Response({"results": [schedule_representation(s) for s in schedules]})


class ScheduleDetailApi(APIView):
    required_scopes = {"GET": "messages:read", "PATCH": "admin", "DELETE": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, schedule_id: int):
        schedule = Schedule.objects.filter(tenant=request.user.tenant, pk=schedule_id).first()
        if schedule is None:
            raise errors.NotFound("No such schedule.")
        return Response(schedule_representation(schedule))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, schedule_id: int):
        return Response(schedule_representation(schedule_cancel(tenant=request.user.tenant, schedule_id=schedule_id,
                                                                actor=request.user, ip=client_ip(request))))

    @extend_schema(request=ScheduleUpdateSerializer, responses=OpenApiTypes.OBJECT)
    def patch(self, request, schedule_id: int):
        serializer = ScheduleUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        changes = {k: data[k] for k in ("name", "event", "cron", "run_at") if k in data}
        schedule = schedule_update(tenant=request.user.tenant, schedule_id=schedule_id, tz=data.get("timezone"),
                                   actor=request.user, ip=client_ip(request), **changes)
        return Response(schedule_representation(schedule))
