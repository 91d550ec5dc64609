from django.urls import path

from tracking import api, views

urlpatterns = [
    path("c/<str:token>", views.click, name="tracking-click"),
    path("o/<str:token>.gif", views.open_pixel, name="tracking-open"),
    # issue 22: anomaly alerts and engagement scores over the API
    path("api/v1/anomalies", api.AnomalyListApi.as_view(), name="anomalies"),
    path("api/v1/anomalies/<str:alert_id>", api.AnomalyDetailApi.as_view(), name="anomaly-detail"),
    path("api/v1/anomalies/<str:alert_id>/acknowledge", api.AnomalyAcknowledgeApi.as_view(),
         name="anomaly-acknowledge"),
    path("api/v1/recipients/<str:external_id>/engagement", api.RecipientEngagementApi.as_view(),
         name="recipient-engagement"),
]
