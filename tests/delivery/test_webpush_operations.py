"""Web Push as an operator sees it: dashboard tables, Prometheus, provider health, failover chain from
settings, rate limits, start-up checks."""

from __future__ import annotations

import pytest

from admin_console import dashboard
from delivery import routing
from delivery.checks import provider_credentials
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from tests.webpush_support import push_service, vapid  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
WEBPUSH = "delivery.providers.webpush.WebPushProvider"
FCM = "delivery.providers.fcm.FcmProvider"


@pytest.fixture
def subscribed(admin_api, push_service, vapid):
    admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")
    assert admin_api.post("/api/v1/recipients/ada/webpush", push_service.subscribe(vapid), format="json").status_code == 201


def _push(api, n=1):
    for i in range(n):
        assert api.post("/api/v1/messages", {"channel": "push", "recipient_id": "ada", "body": f"b{i}"},
                        format="json").status_code == 202


def test_webpush_shows_in_dashboard_metrics_and_health(api, client, subscribed, push_service):
    _push(api)
    assert drain_all().sent == 1
    stats = api.get("/api/v1/stats/channels").json()
    assert any((r["channel"], r["provider"]) == ("push", "webpush") for r in stats["rates"])
    assert any(p["provider"] == "webpush" for p in stats["providers"])
    metrics = client.get("/metrics").content.decode()
    assert 'provider="webpush"' in metrics
    health = api.get("/api/v1/providers/health").json()
    assert "webpush" in str(health)


def test_a_webpush_rate_limit_defers_instead_of_bursting(api, subscribed, push_service):
    ChannelProvider.objects.filter(name="webpush").update(rate_limit=1)
    _push(api, 4)
    stats = drain_all()
    assert stats.sent == 1 and stats.deferred == 3 and len(push_service.received) == 1
    assert Message.objects.filter(status="queued", attempt_count=0).count() == 3


def test_settings_chain_names_both_push_vendors(settings, vapid, tenant):
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS, "push": [FCM, WEBPUSH]}
    routing.clear_cache()
    specs = routing.provider_specs(tenant_id=tenant.id, channel="push")
    assert [s.name for s in specs] == ["fcm", "webpush"]
    assert {("push", "fcm"), ("push", "webpush")} <= set(dashboard.provider_names())
    # The start-up check speaks about each vendor of the chain: FCM lacks its service account here,
    # Web Push has its VAPID pair.
    problems = [e.msg for e in provider_credentials(None)]
    assert any("FcmProvider" in p for p in problems) and not any("WebPushProvider" in p for p in problems)


def test_start_up_check_names_a_missing_vapid_pair(settings, tmp_path, db):
    settings.COMMS_WEBPUSH = {**settings.COMMS_WEBPUSH, "vapid_file": str(tmp_path / "none.json")}
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS, "push": WEBPUSH}
    problems = [e.msg for e in provider_credentials(None)]
    assert any("WebPushProvider" in p and "comms_vapid_keys" in p for p in problems), problems
    settings.COMMS_WEBPUSH = {**settings.COMMS_WEBPUSH, "subject": "ops@example.com"}
    from comms import webpush

    webpush.vapid_generate()
    assert any("mailto:" in e.msg for e in provider_credentials(None))


def test_admin_configures_a_webpush_provider_row_that_sends(admin_client, api, admin_api, vapid, settings, tmp_path):
    """Web Push needs no stored credentials (the VAPID pair is the deployment's key file): a row added in
    the admin with its options is enough, and the next push goes through it."""
    from comms.devserver.standins.webpush import WebPushStandIn

    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    service = WebPushStandIn(folder=tmp_path / "pki")
    try:
        form = {"tenant": "", "channel": "push", "name": "webpush-eu", "provider_class": WEBPUSH, "is_primary": "on",
                "order": "1", "api_endpoint": "", "options": f'{{"ca_bundle": "{service.cert}", "timeout": 3}}',
                "rate_limit": "50", "daily_limit": "", "status": "active", "failover": "",
                "created_at_0": "2026-12-05", "created_at_1": "00:00:00"}
        response = admin_client.post("/admin/delivery/channelprovider/add/", form)
        errors_ = response.context["adminform"].form.errors if response.status_code == 200 else None
        assert response.status_code == 302, errors_
        row = ChannelProvider.objects.get(name="webpush-eu")
        assert (row.provider_class, row.rate_limit, row.options["timeout"]) == (WEBPUSH, 50, 3)
        admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")
        admin_api.post("/api/v1/recipients/ada/webpush", service.subscribe(vapid), format="json")
        _push(api)
        drain_all()
        assert Message.objects.get().provider == "webpush-eu" and len(service.received) == 1
    finally:
        service.close()
