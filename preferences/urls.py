from django.urls import path

from preferences import api

urlpatterns = [
    path("recipients/<str:external_id>/preferences", api.PreferencesApi.as_view(), name="recipient-preferences"),
    path("recipients/<str:external_id>/subscriptions", api.SubscriptionsApi.as_view(), name="recipient-subscriptions"),
    path("recipients/<str:external_id>/unsubscribe", api.UnsubscribeApi.as_view(), name="recipient-unsubscribe"),
    path("recipients/<str:external_id>/consent", api.ConsentExportApi.as_view(), name="recipient-consent"),
    path("recipients/<str:external_id>/erase", api.EraseApi.as_view(), name="recipient-erase"),
    path("preferences/import", api.PreferencesImportApi.as_view(), name="preferences-import"),
    path("suppressions", api.SuppressionsApi.as_view(), name="suppressions"),
]
