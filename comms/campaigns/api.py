"""Campaigns and segments API: thin views over the campaign and segment services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.audit import client_ip
from comms.campaigns import abtest
from comms.campaigns.metrics import campaign_metrics
from comms.campaigns.models import Campaign, Segment
from comms.campaigns.serializers import AbDecideSerializer, CampaignSerializer, SegmentSerializer
from comms.campaigns.segments import segment_delete, segment_queryset, segment_save
from comms.campaigns.services import (
    campaign_cancel, campaign_create, campaign_pause, campaign_progress, campaign_resume, campaign_schedule,
    campaign_update,
)
from comms.parsers import uuid_or_404
from templates_app.models import TemplateVersion


def _uuid(raw: str, what: str):
    return uuid_or_404(raw, f"No such {what}.")


def campaign_representation(campaign: Campaign, *, progress: bool = True) -> dict:
    body = {
        "id": str(campaign.id), "name": campaign.name, "state": campaign.state, "channels": campaign.channels,
        "template": campaign.template_key, "category": campaign.category, "priority": campaign.priority,
        "audience": {"kind": campaign.audience_kind, "size": campaign.audience_size,
                     "segment": campaign.segment.name if campaign.segment_id else None,
                     "refused_rows": campaign.audience_errors[:100], "refused": len(campaign.audience_errors)},
        "schedule": {"kind": campaign.schedule_kind, "at": campaign.send_at,
                     "local_date": campaign.local_date, "local_time": campaign.local_time,
                     "best_within_hours": campaign.best_within_hours},
        "throttle_per_minute": campaign.throttle_per_minute, "start_at": campaign.start_at,
        "started_at": campaign.started_at, "finished_at": campaign.finished_at, "created_at": campaign.created_at,
    }
    if progress:
        body["progress"] = campaign_progress(campaign)
        body["metrics"] = campaign_metrics(campaign)
    return body


class CampaignListApi(APIView):
    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(request=CampaignSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = CampaignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_create(tenant=request.user.tenant, data=dict(serializer.validated_data), actor=request.user,
                                   ip=client_ip(request))
        return Response(campaign_representation(campaign, progress=False), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        campaigns = Campaign.objects.filter(tenant=request.user.tenant).select_related("segment").order_by("-id")[:200]
        return Response({"results": [campaign_representation(c, progress=False) for c in campaigns]})


class CampaignDetailApi(APIView):
    """GET with progress and metrics; PUT replaces a draft's definition (same body and checks as create)."""

    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(request=CampaignSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, campaign_id: str):
        serializer = CampaignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_update(tenant=request.user.tenant, campaign_id=_uuid(campaign_id, "campaign"),
                                   data=dict(serializer.validated_data), actor=request.user, ip=client_ip(request))
        return Response(campaign_representation(campaign, progress=False))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, campaign_id: str):
        campaign = Campaign.objects.filter(tenant=request.user.tenant, pk=_uuid(campaign_id, "campaign")).first()
        if campaign is None:
            raise errors.NotFound("No such campaign.")
        return Response(campaign_representation(campaign))


_ACTIONS = {"schedule": campaign_schedule, "pause": campaign_pause, "resume": campaign_resume,
            "cancel": campaign_cancel}


class CampaignActionApi(APIView):
    """POST /campaigns/{id}/schedule|pause|resume|cancel; each takes effect when it returns."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, campaign_id: str, action: str):
        if action not in _ACTIONS:
            raise errors.NotFound(f"Unknown action '{action}'; use {', '.join(_ACTIONS)}.")
        result = _ACTIONS[action](tenant=request.user.tenant, campaign_id=_uuid(campaign_id, "campaign"),
                                  actor=request.user, ip=client_ip(request))
        campaign, extra = (result if isinstance(result, tuple) else (result, {}))
        return Response({**campaign_representation(campaign), **({"effect": extra} if extra else {})})


class SegmentListApi(APIView):
    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(request=SegmentSerializer, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
                   description="Creates the segment (201) or replaces the filter of the one with that name (200).")
    def post(self, request):
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        segment, created = segment_save(tenant=request.user.tenant, name=data["name"], spec=data["filter"],
                                        description=data["description"], actor=request.user, ip=client_ip(request))
        return Response(segment_representation(segment),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"results": list(Segment.objects.filter(tenant=request.user.tenant).values(
            "name", "description", "filter"))})


def segment_representation(segment: Segment) -> dict:
    size = segment_queryset(tenant=segment.tenant, spec=segment.filter).count()
    return {"name": segment.name, "description": segment.description, "filter": segment.filter, "size": size}


class SegmentDetailApi(APIView):
    """GET a segment with its current size; DELETE it (refused while a campaign uses it)."""

    required_scopes = {"GET": "messages:read", "DELETE": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, name: str):
        segment = Segment.objects.filter(tenant=request.user.tenant, name=name).first()
        if segment is None:
            raise errors.NotFound("No such segment.")
        return Response(segment_representation(segment))

    @extend_schema(responses={204: None})
    def delete(self, request, name: str):
        segment_delete(tenant=request.user.tenant, name=name, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignAbTestApi(APIView):
    """GET /campaigns/{id}/abtest?metric=open|click|conversion&mde=0.02: per-variant statistics and the
    sample-then-winner state (settings, due time, winner and why)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, campaign_id: str):
        campaign = Campaign.objects.filter(tenant=request.user.tenant, pk=_uuid(campaign_id, "campaign")).first()
        if campaign is None:
            raise errors.NotFound("No such campaign.")
        body = abtest.campaign_results(campaign=campaign, metric=request.query_params.get("metric"),
                                       mde=request.query_params.get("mde"))
        due = abtest.abtest_due_at(campaign)
        return Response({**body, "decide_at": due})


class CampaignAbTestDecideApi(APIView):
    """POST /campaigns/{id}/abtest/decide: choose the winner now, by the rules or ``{"variant", "reason"}``."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=AbDecideSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, campaign_id: str):
        serializer = AbDecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cfg = abtest.campaign_abtest_decide_now(
            tenant=request.user.tenant, campaign_id=_uuid(campaign_id, "campaign"), variant=data.get("variant"),
            reason=data["reason"], actor=request.user, ip=client_ip(request))
        campaign = Campaign.objects.get(pk=campaign_id)
        return Response({**abtest.campaign_results(campaign=campaign), "ab_test": cfg,
                         "campaign": campaign_representation(campaign)})


class ExperimentResultsApi(APIView):
    """GET /experiments/{template_key}/versions/{n}/results?metric=&mde=&control=: a template
    experiment's variants with P(best) and the two-proportion test against the control."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str, number: int):
        version = TemplateVersion.objects.filter(template__tenant=request.user.tenant, template__template_key=key,
                                                 version=number).first()
        if version is None:
            raise errors.NotFound("No such template version.")
        q = request.query_params
        return Response({"template": key, "version": number, **abtest.experiment_results(
            version=version, metric=q.get("metric", "open"), mde=q.get("mde", 0.02), control=q.get("control"))})
