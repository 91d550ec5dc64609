from django.urls import path

from delivery import api

urlpatterns = [
    path("messages", api.MessageListCreateApi.as_view(), name="messages"),
    path("messages/bulk", api.MessageBulkApi.as_view(), name="messages-bulk"),
    path("messages/<str:message_id>", api.MessageDetailApi.as_view(), name="message"),
    path("messages/<str:message_id>/requeue", api.MessageRequeueApi.as_view(), name="message-requeue"),
]
