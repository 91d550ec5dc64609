"""Locale coverage and the locale/version diff over the API (issue 20): read-only, like a preview."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from templates_app.api import _template
from templates_app.locale_diff import locale_diff
from templates_app.locales import template_coverage


class TemplateLocalesApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="v1_template_locales", responses=OpenApiTypes.OBJECT,
                   parameters=[OpenApiParameter("version", str, description="v3 or 3; default: the active version")])
    def get(self, request, key: str):
        return Response(template_coverage(_template(request, key), request.query_params.get("version")))


class TemplateDiffApi(APIView):
    required_scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="v1_template_diff", responses=OpenApiTypes.OBJECT, parameters=[
        OpenApiParameter("a", str, required=True, description="a locale (de-AT) or a version (v2)"),
        OpenApiParameter("b", str, required=True, description="the same kind as a"),
        OpenApiParameter("version", str, description="locale mode: the version compared (default: active)"),
        OpenApiParameter("locale", str, description="version mode: compare only this locale")])
    def get(self, request, key: str):
        params = request.query_params
        return Response(locale_diff(_template(request, key), a=params.get("a", ""), b=params.get("b", ""),
                                    version=params.get("version"), locale=params.get("locale", "")))
