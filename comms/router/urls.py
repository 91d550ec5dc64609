from django.urls import path

from comms.router import api

urlpatterns = [
    path("events", api.EventsApi.as_view(), name="events"),
    path("events/batch", api.EventBatchApi.as_view(), name="events-batch"),
    path("events/dry-run", api.DryRunApi.as_view(), name="events-dry-run"),
    path("events/<str:event_id>", api.EventDetailApi.as_view(), name="event"),
    path("rules", api.RuleListApi.as_view(), name="rules"),
    path("rules/<str:event_name>", api.RuleDetailApi.as_view(), name="rule"),
    path("rules/<str:event_name>/activate", api.RuleActivateApi.as_view(), name="rule-activate"),
    path("schedules", api.ScheduleListApi.as_view(), name="schedules"),
    path("schedules/<int:schedule_id>", api.ScheduleDetailApi.as_view(), name="schedule"),
]
