from django.urls import path

from delivery import api

urlpatterns = [
    path("messages", api.MessageListCreateApi.as_view(), name="messages"),
    path("messages/bulk", api.MessageBulkApi.as_view(), name="messages-bulk"),
    path("messages/<str:message_id>", api.MessageDetailApi.as_view(), name="message"),
    path("messages/<str:message_id>/requeue", api.MessageRequeueApi.as_view(), name="message-requeue"),
    path("webhook-endpoints", api.WebhookEndpointListApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>", api.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint"),
    path("webhook-endpoints/<int:endpoint_id>/rotate", api.WebhookEndpointRotateApi.as_view(),
         name="webhook-endpoint-rotate"),
]
