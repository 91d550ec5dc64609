"""End-user pages (no API key: the signed token in the URL is the authority)."""

from django.urls import path

from preferences import views

urlpatterns = [
    path("u/<str:token>", views.unsubscribe_page, name="unsubscribe"),
    path("p/<str:token>", views.preference_center, name="preference-center"),
    path("s/confirm/<str:token>", views.confirm_subscription, name="confirm-subscription"),
]
