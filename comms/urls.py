from django.urls import path

from comms import api, webpush_api

# The router's and the campaigns' routes live in comms/router/urls.py and comms/campaigns/urls.py.
urlpatterns = [
    path("recipients/<str:external_id>", api.RecipientApi.as_view(), name="recipient"),
    path("recipients/<str:external_id>/devices", api.RecipientDevicesApi.as_view(), name="recipient-devices"),
    path("devices/unregister", api.DeviceUnregisterApi.as_view(), name="device-unregister"),
    path("health", api.HealthApi.as_view(), name="health"),
    path("recipients/<str:external_id>/webpush", webpush_api.RecipientWebPushApi.as_view(), name="recipient-webpush"),
    path("webpush/unsubscribe", webpush_api.WebPushUnsubscribeApi.as_view(), name="webpush-unsubscribe"),
    path("webpush/vapid-public-key", webpush_api.VapidPublicKeyApi.as_view(), name="webpush-vapid-key"),
]
