from django.urls import path

from delivery import api, inbox, stream, webpush_inbox
from delivery.deliverability import selftest_api

urlpatterns = [
    path("messages", api.MessageListCreateApi.as_view(), name="messages"),
    path("messages/bulk", api.MessageBulkApi.as_view(), name="messages-bulk"),
    path("messages/<str:message_id>", api.MessageDetailApi.as_view(), name="message"),
    path("messages/<str:message_id>/requeue", api.MessageRequeueApi.as_view(), name="message-requeue"),
    path("providers/health", api.ProviderHealthApi.as_view(), name="provider-health"),
    path("inbox-tokens", inbox.InboxTokenApi.as_view(), name="inbox-tokens"),
    path("inbox", inbox.InboxListApi.as_view(), name="inbox"),
    path("inbox/stream", stream.inbox_stream, name="inbox-stream"),
    path("inbox/unread-count", inbox.InboxCountApi.as_view(), name="inbox-count"),
    path("inbox/webpush", webpush_inbox.InboxWebPushApi.as_view(), name="inbox-webpush"),
    path("inbox/read-all", inbox.InboxReadAllApi.as_view(), name="inbox-read-all"),
    path("inbox/<str:item_id>/<str:action>", inbox.InboxActionApi.as_view(), name="inbox-action"),
    path("webhook-endpoints", api.WebhookEndpointListApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>", api.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint"),
    path("webhook-endpoints/<int:endpoint_id>/rotate", api.WebhookEndpointRotateApi.as_view(),
         name="webhook-endpoint-rotate"),
    path("compliance/selftest", selftest_api.ComplianceSelftestApi.as_view(), name="compliance-selftest"),
]

# Deliverability (issue 19): sending domains, their DNS records, DKIM key rotation, DNS checks.
from delivery.deliverability import api as deliverability_api  # noqa: E402

urlpatterns += [
    path("sending-domains", deliverability_api.SendingDomainListApi.as_view(), name="sending-domains"),
    path("sending-domains/<str:domain_id>", deliverability_api.SendingDomainDetailApi.as_view(),
         name="sending-domain"),
    path("sending-domains/<str:domain_id>/records", deliverability_api.SendingDomainRecordsApi.as_view(),
         name="sending-domain-records"),
    path("sending-domains/<str:domain_id>/rotate", deliverability_api.SendingDomainRotateApi.as_view(),
         name="sending-domain-rotate"),
    path("sending-domains/<str:domain_id>/check", deliverability_api.SendingDomainCheckApi.as_view(),
         name="sending-domain-check"),
]

# Cost tracking and envelopes (issue 22).
from delivery.costs import api as costs_api  # noqa: E402

urlpatterns += [
    path("costs", costs_api.CostsApi.as_view(), name="costs"),
    path("prices", costs_api.PricesApi.as_view(), name="prices"),
    path("cost-envelopes", costs_api.EnvelopesApi.as_view(), name="cost-envelopes"),
]
