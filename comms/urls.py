from django.urls import path

from comms import api, router_api

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
]
