"""Staged rollout API: start, read, advance, pause/resume and roll back a template's rollout (thin views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from templates_app import rollout as service
from templates_app.models import Template, TemplateRollout


def rollout_representation(rollout: TemplateRollout) -> dict[str, Any]:
    """What the API and the admin show: where it stands, what comes next, the guardrails and why it ended."""
    return {
        "id": rollout.pk, "template": rollout.template.template_key, "version": rollout.version.version,
        "previous_version": rollout.previous.version, "state": rollout.state, "percent": rollout.percent,
        "schedule": rollout.schedule, "step_seconds": rollout.step_seconds,
        "next_step_at": rollout.next_step_at.isoformat() if rollout.next_step_at else None,
        "min_volume": rollout.min_volume, "guardrails": rollout.guardrails,
        "guardrail_status": rollout.guardrail_status, "rollback_reason": rollout.rollback_reason or None,
        "history": rollout.history, "started_by": rollout.started_by, "started_at": rollout.started_at.isoformat(),
        "finished_at": rollout.finished_at.isoformat() if rollout.finished_at else None,
    }


def _template(request, key: str) -> Template:
    template = Template.objects.filter(tenant=request.user.tenant, template_key=key).first()
    if template is None:
        raise errors.NotFound(f"No template '{key}'.")
    return template


def _current(request, key: str) -> TemplateRollout:
    rollout = TemplateRollout.objects.filter(template=_template(request, key)).select_related(
        "template", "version", "previous").order_by("-started_at", "-pk").first()
    if rollout is None:
        raise service.RolloutNotFound(details={"template": key})
    return rollout


class StartSerializer(serializers.Serializer):
    # Percentages are checked by the service (typed COMMS_ROLLOUT_PERCENT_INVALID), so any JSON passes here.
    version = serializers.IntegerField(min_value=1)
    percent = serializers.JSONField()
    schedule = serializers.JSONField(required=False)
    step_seconds = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    min_volume = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    guardrails = serializers.JSONField(required=False)


class AdvanceSerializer(serializers.Serializer):
    percent = serializers.JSONField(required=False)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    resume = serializers.BooleanField(required=False, default=False)


class RolloutApi(APIView):
    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(operation_id="v1_template_rollout_get", responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        """The template's latest rollout (running, paused or finished)."""
        return Response(rollout_representation(_current(request, key)))

    @extend_schema(operation_id="v1_template_rollout_start", request=StartSerializer,
                   responses={201: OpenApiTypes.OBJECT})
    def post(self, request, key: str):
        serializer = StartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = _template(request, key)
        version = template.versions.filter(version=data["version"]).first()
        if version is None:
            raise errors.NotFound(f"Template '{key}' has no v{data['version']}.")
        service.rollout_start(
            template=template, version=version, percent=data["percent"], actor=request.user,
            schedule=data.get("schedule"), step_seconds=data.get("step_seconds"), min_volume=data.get("min_volume"),
            guardrails=data.get("guardrails"))
        return Response(rollout_representation(_current(request, key)), status=status.HTTP_201_CREATED)


class RolloutActionApi(APIView):
    required_scopes = {"POST": "admin"}
    action = ""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        rollout = _current(request, key)
        if self.action == "advance":
            serializer = AdvanceSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            service.rollout_advance(rollout=rollout, actor=request.user, percent=serializer.validated_data.get("percent"))
        else:
            serializer = ReasonSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            if self.action == "rollback":
                service.rollout_rollback(rollout=rollout, actor=request.user, reason=data["reason"])
            else:
                service.rollout_pause(rollout=rollout, actor=request.user, resume=self.action == "resume")
        return Response(rollout_representation(_current(request, key)))
