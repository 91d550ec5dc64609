"""Templates API: create and edit drafts, preview every channel, submit for review.

Approving is a human decision made in the admin (by a user who is not an author), so the API
offers no approve endpoint.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from comms import errors
from comms.models import Recipient
from templates_app import services
from templates_app.models import Template
from templates_app.quality.lint import lint_version
from templates_app.serializers import (
    LintOverrideSerializer,
    LintValidateSerializer,
    PreviewSerializer,
    TemplateEditSerializer,
    TemplateWriteSerializer,
    template_representation,
)


def _template(request, key: str) -> Template:
    template = Template.objects.filter(tenant=request.user.tenant, template_key=key).select_related(
        "active_version").first()
    if template is None:
        raise errors.NotFound(f"No template '{key}'.")
    return template


class TemplateListApi(APIView):
    required_scopes = {"GET": "messages:read", "POST": "admin"}

    @extend_schema(operation_id="v1_templates_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        templates = Template.objects.filter(tenant=request.user.tenant).select_related("active_version") \
            .prefetch_related("versions__locales").order_by("template_key")
        return Response({"results": [template_representation(t) for t in templates]})

    @extend_schema(request=TemplateWriteSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = TemplateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.template_create(tenant=request.user.tenant, actor=request.user,
                                            data=serializer.validated_data)
        return Response(template_representation(template), status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    required_scopes = {"GET": "messages:read", "PUT": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        return Response(template_representation(_template(request, key)))

    @extend_schema(request=TemplateEditSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, key: str):
        """Edits always land in a draft version; the live version never changes."""
        serializer = TemplateEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.template_edit(template=_template(request, key), actor=request.user, data=serializer.validated_data)
        return Response(template_representation(_template(request, key)))


class TemplatePreviewApi(APIView):
    required_scopes = {"POST": "messages:read"}

    @extend_schema(request=PreviewSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = _template(request, key)
        if "version" in data:
            version = template.versions.filter(version=data["version"]).first()
        else:
            version = template.versions.order_by("-version").first()
        if version is None:
            raise errors.NotFound("No such version.")
        locale, recipient_key = data["locale"], data["recipient_id"]
        if recipient_key:
            recipient = Recipient.objects.filter(tenant=request.user.tenant, external_id=recipient_key).first()
            locale = locale or (recipient.locale if recipient else "")
        preview = services.template_preview(version=version, variables=data["variables"], locale=locale,
                                            recipient_key=recipient_key, spam_check=True)
        return Response(preview)


class TemplateSubmitApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        template = _template(request, key)
        draft = template.versions.filter(status="draft").order_by("-version").first()
        if draft is None:
            raise errors.TemplateNotEditable("There is no draft version to submit.")
        draft = services.version_submit(version=draft, actor=request.user)
        return Response({**template_representation(_template(request, key)), "lint": services.lint_summary(draft)})


class TemplateValidateApi(APIView):
    """Dry run of a submit: what would block it (problems) and what the lint finds, nothing stored.
    Same scope as submit: validation fetches the template's image URLs."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=LintValidateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        serializer = LintValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = _template(request, key)
        versions = template.versions.order_by("-version")
        if "version" in serializer.validated_data:
            versions = versions.filter(version=serializer.validated_data["version"])
        version = versions.first()
        if version is None:
            raise errors.NotFound("No such version.")
        problems = services.version_validate(version)
        version.lint_findings = lint_version(version)  # not saved: the stored findings are those at submit
        return Response({"template": template.template_key, "version": version.version, "status": version.status,
                         "problems": problems, "lint": services.lint_summary(version)})


class TemplateLintOverrideApi(APIView):
    """Override one failing lint rule of the version pending review, with a reason the approver sees."""

    required_scopes = {"POST": "admin"}

    @extend_schema(request=LintOverrideSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        serializer = LintOverrideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        versions = _template(request, key).versions.order_by("-version")
        version = (versions.filter(version=data["version"]) if "version" in data
                   else versions.filter(status="pending_review")).first()
        if version is None:
            raise errors.NotFound("No such version pending review.")
        version = services.version_lint_override(version=version, rule=data["rule"], reason=data["reason"],
                                                 actor=request.user)
        return Response({"template": key, "version": version.version, "lint": services.lint_summary(version)})
