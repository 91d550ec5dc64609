"""GET one preview image of a template version: the PNG a reviewer looks at, for tools outside the admin."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework.views import APIView

from comms import errors
from templates_app.models import Template
from templates_app.services.previews import version_preview_image


class TemplatePreviewImageApi(APIView):
    """``image/png``; errors are the usual JSON (unknown mode 400, unknown locale 404, no Chromium 503)."""

    required_scopes = {"GET": "admin"}  # the images show unreleased content

    @extend_schema(operation_id="v1_template_preview_image",
                   responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)})  # errors: the shared Error schema
    def get(self, request, key: str, number: int, locale: str, mode: str):
        template = Template.objects.filter(tenant=request.user.tenant, template_key=key).first()
        version = template.versions.select_related("template").filter(version=number).first() if template else None
        if version is None:
            raise errors.NotFound(f"No version {number} of template '{key}'.")
        shot = version_preview_image(version=version, locale=locale, mode=mode)
        response = HttpResponse(bytes(shot.png), content_type="image/png")
        response["Cache-Control"] = "private, no-cache"
        response["X-Preview-Width"], response["X-Preview-Height"] = str(shot.width), str(shot.height)
        response["X-Preview-Direction"] = shot.direction
        return response
