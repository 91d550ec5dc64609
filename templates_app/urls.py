from django.urls import path

from templates_app import api, rollout_api

urlpatterns = [
    path("templates", api.TemplateListApi.as_view(), name="templates"),
    path("templates/<slug:key>", api.TemplateDetailApi.as_view(), name="template"),
    path("templates/<slug:key>/preview", api.TemplatePreviewApi.as_view(), name="template-preview"),
    path("templates/<slug:key>/submit", api.TemplateSubmitApi.as_view(), name="template-submit"),
    # Staged rollouts (issue 20)
    path("templates/<slug:key>/rollouts", rollout_api.RolloutApi.as_view(), name="template-rollouts"),
    *[path(f"templates/<slug:key>/rollouts/{step}", rollout_api.RolloutActionApi.as_view(action=step),
           name=f"template-rollout-{step}") for step in ("advance", "rollback", "pause", "resume")],
]
