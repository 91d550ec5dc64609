"""Assistant endpoints under /api/v1/templates/<key>/assist/… (admin scope): suggestions, never silent edits."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from templates_app.api import _template
from templates_app.assist import services
from templates_app.assist.llm import assistant_status


class _VersionInput(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=35, default="")


class AssistSmsInput(_VersionInput):
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=10000)
    max_segments = serializers.IntegerField(required=False, min_value=1, max_value=10, default=1)


class AssistVariablesInput(_VersionInput):
    pass


class AssistSubjectsInput(_VersionInput):
    count = serializers.IntegerField(required=False, min_value=1, max_value=services.MAX_SUBJECTS, default=5)


class AssistTranslateInput(serializers.Serializer):
    locales = serializers.ListField(child=serializers.CharField(max_length=35), min_length=1, max_length=20)
    source_locale = serializers.CharField(required=False, allow_blank=True, max_length=35, default="")


# The model endpoint failing is the one extra answer of the language-model operations.
_MODEL_FAILED = OpenApiResponse(OpenApiTypes.OBJECT, description="COMMS_ASSISTANT_FAILED: the model endpoint failed")


class SmsCompressApi(APIView):
    required_scopes = {"POST": "admin"}
    InputSerializer = AssistSmsInput

    @extend_schema(operation_id="v1_templates_assist_sms_compress", request=AssistSmsInput,
                   responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        data = self._valid(request)
        template = _template(request, key)
        version = None if "text" in data else services.assist_version(template, data.get("version"))
        return Response(services.assist_sms_compress(version=version, text=data.get("text"), locale=data["locale"],
                                                     max_segments=data["max_segments"]))

    def _valid(self, request) -> dict:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class VariablesApi(SmsCompressApi):
    InputSerializer = AssistVariablesInput

    @extend_schema(operation_id="v1_templates_assist_variables", request=AssistVariablesInput,
                   responses=OpenApiTypes.OBJECT)
    def post(self, request, key: str):
        data = self._valid(request)
        version = services.assist_version(_template(request, key), data.get("version"))
        return Response(services.assist_variables(version=version))


class SubjectsApi(SmsCompressApi):
    InputSerializer = AssistSubjectsInput

    @extend_schema(operation_id="v1_templates_assist_subjects", request=AssistSubjectsInput,
                   responses={200: OpenApiTypes.OBJECT, 502: _MODEL_FAILED})
    def post(self, request, key: str):
        data = self._valid(request)
        version = services.assist_version(_template(request, key), data.get("version"))
        return Response(services.assist_subjects(version=version, actor=request.user, locale=data["locale"],
                                                 count=data["count"]))


class TranslateApi(SmsCompressApi):
    InputSerializer = AssistTranslateInput

    @extend_schema(operation_id="v1_templates_assist_translate", request=AssistTranslateInput,
                   responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 502: _MODEL_FAILED})
    def post(self, request, key: str):
        data = self._valid(request)
        result = services.assist_translate(template=_template(request, key), actor=request.user,
                                           locales=data["locales"], source_locale=data["source_locale"])
        return Response(result, status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK)


class AssistStatusApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(operation_id="v1_templates_assist_status", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(assistant_status())
