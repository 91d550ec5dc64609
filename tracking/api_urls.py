"""API routes of tracking (under /api/v1/); the public open/click routes are in tracking/urls.py."""

from django.urls import path

from tracking import api

urlpatterns = [
    path("messages/<str:message_id>/conversions", api.MessageConversionApi.as_view(), name="message-conversions"),
]
