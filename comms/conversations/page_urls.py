"""The conversations' HTML page (the demo chat client)."""

from django.urls import path

from comms.conversations import views

urlpatterns = [path("conversations/demo", views.demo_chat, name="conversations-demo")]
