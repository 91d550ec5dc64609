from django.urls import path

from comms import api

urlpatterns = [
    path("recipients/<str:external_id>", api.RecipientApi.as_view(), name="recipient"),
    path("health", api.HealthApi.as_view(), name="health"),
]
