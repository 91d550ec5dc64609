from django.urls import path

from templates_app import api, api_locales, api_previews, rollout_api

urlpatterns = [
    path("templates", api.TemplateListApi.as_view(), name="templates"),
    path("templates/<slug:key>", api.TemplateDetailApi.as_view(), name="template"),
    path("templates/<slug:key>/preview", api.TemplatePreviewApi.as_view(), name="template-preview"),
    path("templates/<slug:key>/submit", api.TemplateSubmitApi.as_view(), name="template-submit"),
    path("templates/<slug:key>/versions/<int:number>/previews/<str:locale>/<str:mode>",
         api_previews.TemplatePreviewImageApi.as_view(), name="template-preview-image"),
    path("templates/<slug:key>/validate", api.TemplateValidateApi.as_view(), name="template-validate"),
    path("templates/<slug:key>/lint-overrides", api.TemplateLintOverrideApi.as_view(), name="template-lint-override"),
    path("templates/<slug:key>/locales", api_locales.TemplateLocalesApi.as_view(), name="template-locales"),
    path("templates/<slug:key>/diff", api_locales.TemplateDiffApi.as_view(), name="template-diff"),
    # Staged rollouts (issue 20)
    path("templates/<slug:key>/rollouts", rollout_api.RolloutApi.as_view(), name="template-rollouts"),
    *[path(f"templates/<slug:key>/rollouts/{step}", rollout_api.RolloutActionApi.as_view(action=step),
           name=f"template-rollout-{step}") for step in ("advance", "rollback", "pause", "resume")],
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
