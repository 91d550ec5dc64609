from django.urls import path

from admin_console import (analytics_api, analytics_views, anomalies_page, api, deliverability, engagement_page,
                           pools_page, probes_views, views)

urlpatterns = [
    path("console/", views.console, name="console"),
    path("console/probes/", probes_views.probes, name="console-probes"),
    path("console/deliverability/", deliverability.deliverability, name="console-deliverability"),
    path("console/pools/", pools_page.pools_page, name="console-pools"),
    path("console/anomalies/", anomalies_page.anomalies, name="console-anomalies"),
    path("console/anomalies/<int:alert_id>/acknowledge", anomalies_page.acknowledge, name="console-anomaly-ack"),
    path("console/engagement/", engagement_page.engagement_page, name="console-engagement"),
    path("api/v1/stats/queue", api.StatsQueueApi.as_view(), name="stats-queue"),
    path("api/v1/stats/channels", api.StatsChannelsApi.as_view(), name="stats-channels"),
    path("api/v1/stats/templates", api.StatsTemplatesApi.as_view(), name="stats-templates"),
    path("metrics", api.metrics, name="metrics"),
    path("readyz", api.readyz, name="readyz"),
    # issue 22: analytics and compliance reports
    path("api/v1/analytics/delivery", analytics_api.DeliveryAnalyticsApi.as_view(), name="analytics-delivery"),
    path("api/v1/analytics/engagement", analytics_api.EngagementAnalyticsApi.as_view(), name="analytics-engagement"),
    path("api/v1/analytics/performance", analytics_api.PerformanceAnalyticsApi.as_view(),
         name="analytics-performance"),
    path("api/v1/compliance/report", analytics_api.ComplianceReportApi.as_view(), name="compliance-report"),
    path("console/analytics/", analytics_views.analytics_page, name="console-analytics"),
    path("console/compliance/", analytics_views.compliance_page, name="console-compliance"),
]
