from django.urls import path

from comms.router import api, conversions_api, journey_api

urlpatterns = [
    path("events", api.EventsApi.as_view(), name="events"),
    path("events/batch", api.EventBatchApi.as_view(), name="events-batch"),
    path("events/dry-run", api.DryRunApi.as_view(), name="events-dry-run"),
    path("events/<str:event_id>", api.EventDetailApi.as_view(), name="event"),
    # A conversion (tracking's) that may also be routed as an event: served here (conversions_api.py).
    path("messages/<str:message_id>/conversions", conversions_api.MessageConversionApi.as_view(),
         name="message-conversions"),
    path("rules", api.RuleListApi.as_view(), name="rules"),
    path("rules/<str:event_name>", api.RuleDetailApi.as_view(), name="rule"),
    path("rules/<str:event_name>/activate", api.RuleActivateApi.as_view(), name="rule-activate"),
    path("schedules", api.ScheduleListApi.as_view(), name="schedules"),
    path("schedules/<int:schedule_id>", api.ScheduleDetailApi.as_view(), name="schedule"),
    # Journeys (issue 16): the fixed paths come before journeys/<key>.
    path("journeys", journey_api.JourneyListApi.as_view(), name="journeys"),
    path("journeys/validate", journey_api.JourneyValidateApi.as_view(), name="journeys-validate"),
    path("journeys/simulate", journey_api.JourneySimulateApi.as_view(), name="journeys-simulate"),
    path("journeys/<str:key>", journey_api.JourneyDetailApi.as_view(), name="journey"),
    path("journeys/<str:key>/versions/<int:version>", journey_api.JourneyVersionApi.as_view(),
         name="journey-version"),
    path("journeys/<str:key>/pause", journey_api.JourneyStatusApi.as_view(target="paused"), name="journey-pause"),
    path("journeys/<str:key>/resume", journey_api.JourneyStatusApi.as_view(target="active"), name="journey-resume"),
    path("journeys/<str:key>/archive", journey_api.JourneyStatusApi.as_view(target="archived"),
         name="journey-archive"),
    path("journeys/<str:key>/migrate-runs", journey_api.JourneyMigrateApi.as_view(), name="journey-migrate"),
    path("journeys/<str:key>/enrol", journey_api.JourneyEnrolApi.as_view(), name="journey-enrol"),
    path("journeys/<str:key>/enrol-segment", journey_api.JourneyEnrolSegmentApi.as_view(),
         name="journey-enrol-segment"),
    path("journeys/<str:key>/runs", journey_api.JourneyRunsApi.as_view(), name="journey-runs"),
    path("journeys/<str:key>/runs/<str:run_id>", journey_api.JourneyRunApi.as_view(), name="journey-run"),
    path("journeys/<str:key>/stats", journey_api.JourneyStatsApi.as_view(), name="journey-stats"),
    path("journeys/<str:key>/simulate", journey_api.JourneySimulateApi.as_view(), name="journey-simulate"),
]
