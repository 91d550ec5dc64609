from django.urls import path

from comms import api, campaign_api, router_api

urlpatterns = [
    path("recipients/<str:external_id>", api.RecipientApi.as_view(), name="recipient"),
    path("recipients/<str:external_id>/devices", api.RecipientDevicesApi.as_view(), name="recipient-devices"),
    path("devices/unregister", api.DeviceUnregisterApi.as_view(), name="device-unregister"),
    path("health", api.HealthApi.as_view(), name="health"),
    path("events", router_api.EventsApi.as_view(), name="events"),
    path("events/batch", router_api.EventBatchApi.as_view(), name="events-batch"),
    path("events/dry-run", router_api.DryRunApi.as_view(), name="events-dry-run"),
    path("events/<str:event_id>", router_api.EventDetailApi.as_view(), name="event"),
    path("rules", router_api.RuleListApi.as_view(), name="rules"),
    path("rules/<str:event_name>", router_api.RuleDetailApi.as_view(), name="rule"),
    path("rules/<str:event_name>/activate", router_api.RuleActivateApi.as_view(), name="rule-activate"),
    path("campaigns", campaign_api.CampaignListApi.as_view(), name="campaigns"),
    path("campaigns/<str:campaign_id>", campaign_api.CampaignDetailApi.as_view(), name="campaign"),
    path("campaigns/<str:campaign_id>/<str:action>", campaign_api.CampaignActionApi.as_view(), name="campaign-action"),
    path("segments", campaign_api.SegmentListApi.as_view(), name="segments"),
    path("segments/<str:name>", campaign_api.SegmentDetailApi.as_view(), name="segment"),
    path("schedules", campaign_api.ScheduleListApi.as_view(), name="schedules"),
    path("schedules/<int:schedule_id>", campaign_api.ScheduleDetailApi.as_view(), name="schedule"),
]
