from django.urls import path

from templates_app import api, api_previews

urlpatterns = [
    path("templates", api.TemplateListApi.as_view(), name="templates"),
    path("templates/<slug:key>", api.TemplateDetailApi.as_view(), name="template"),
    path("templates/<slug:key>/preview", api.TemplatePreviewApi.as_view(), name="template-preview"),
    path("templates/<slug:key>/submit", api.TemplateSubmitApi.as_view(), name="template-submit"),
    path("templates/<slug:key>/versions/<int:number>/previews/<str:locale>/<str:mode>",
         api_previews.TemplatePreviewImageApi.as_view(), name="template-preview-image"),
]

# Content assistants (issue 22 item 7).
from templates_app.assist import api as assist_api  # noqa: E402

urlpatterns += [
    path("templates/assist/status", assist_api.AssistStatusApi.as_view(), name="template-assist-status"),
    path("templates/<slug:key>/assist/sms-compress", assist_api.SmsCompressApi.as_view(), name="template-assist-sms"),
    path("templates/<slug:key>/assist/variables", assist_api.VariablesApi.as_view(), name="template-assist-variables"),
    path("templates/<slug:key>/assist/subjects", assist_api.SubjectsApi.as_view(), name="template-assist-subjects"),
    path("templates/<slug:key>/assist/translate", assist_api.TranslateApi.as_view(), name="template-assist-translate"),
]
