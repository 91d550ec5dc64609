from django.urls import path

from comms.campaigns import api

urlpatterns = [
    path("campaigns", api.CampaignListApi.as_view(), name="campaigns"),
    path("campaigns/<str:campaign_id>", api.CampaignDetailApi.as_view(), name="campaign"),
    path("campaigns/<str:campaign_id>/abtest", api.CampaignAbTestApi.as_view(), name="campaign-abtest"),
    path("campaigns/<str:campaign_id>/abtest/decide", api.CampaignAbTestDecideApi.as_view(),
         name="campaign-abtest-decide"),
    path("experiments/<str:key>/versions/<int:number>/results", api.ExperimentResultsApi.as_view(),
         name="experiment-results"),
    path("campaigns/<str:campaign_id>/<str:action>", api.CampaignActionApi.as_view(), name="campaign-action"),
    path("segments", api.SegmentListApi.as_view(), name="segments"),
    path("segments/<str:name>", api.SegmentDetailApi.as_view(), name="segment"),
]
