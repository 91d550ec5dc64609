"""Bandwidth, Vonage and Postal configured from settings alone (no ChannelProvider row): the settings'
failover chain, the start-up check, rate limits, and the dashboard / Prometheus figures per provider."""

from __future__ import annotations

import pytest

from comms.devserver.standins.bandwidth import BandwidthStandIn
from comms.devserver.standins.postal import PostalStandIn
from comms.devserver.standins.vonage import VonageStandIn
from comms.enums import Status
from comms.models import Scope
from delivery import routing
from delivery.models import Message
from delivery.services import drain_all
from tests.delivery.sms_gateways import BW, VONAGE

pytestmark = pytest.mark.django_db
BANDWIDTH = "delivery.providers.bandwidth.BandwidthProvider"
VONAGE_PATH = "delivery.providers.vonage.VonageProvider"
POSTAL = "delivery.providers.anymail_esp.PostalProvider"


@pytest.fixture
def chain(settings):
    bw = BandwidthStandIn(BW["account_id"], BW["username"], BW["password"], application_id=BW["application_id"],
                          receipt_delay=None)
    vg = VonageStandIn(VONAGE["api_key"], VONAGE["api_secret"], receipt_delay=None)
    pm = PostalStandIn("pk", receipt_delay=None)
    settings.COMMS_BANDWIDTH = {**BW, "from_number": "+15005550006", "base_url": bw.url}
    settings.COMMS_VONAGE = {"api_key": VONAGE["api_key"], "api_secret": VONAGE["api_secret"],
                             "from_number": "15005550007", "base_url": vg.url}
    settings.COMMS_POSTAL = {"api_url": pm.api_url, "api_key": "pk"}
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS, "sms": BANDWIDTH, "email": POSTAL}
    settings.COMMS_CHANNEL_FAILOVER = {"sms": [BANDWIDTH, VONAGE_PATH]}  # the primary listed again: once
    routing.clear_cache()
    yield bw, vg, pm
    routing.clear_cache()
    bw.close()
    vg.close()
    pm.close()


def _send(api, channel, to):
    response = api.post("/api/v1/messages", {"channel": channel, "to": to, "subject": "Hi", "body": "Code 1"},
                        format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_settings_chain_fails_over_and_the_figures_name_each_provider(api, client, chain, tenant, make_client):
    bw, vg, pm = chain
    assert [s.name for s in routing.provider_specs(tenant_id=tenant.pk, channel="sms")] == ["bandwidth", "vonage"]
    bw.failures["+14155550123"] = [(503, "service-unavailable", "down")]
    first, second = _send(api, "sms", "+14155550123"), _send(api, "sms", "+14155550124")
    mail = _send(api, "email", "ada@example.com")
    drain_all()
    got = {i: (m.status, m.provider) for i, m in ((i, Message.objects.get(id=i)) for i in (first, second, mail))}
    assert got == {first: (Status.SENT, "vonage"), second: (Status.SENT, "bandwidth"), mail: (Status.SENT, "postal")}
    text = client.get("/metrics").content.decode()
    for provider, channel in (("bandwidth", "sms"), ("vonage", "sms"), ("postal", "email")):
        assert f'comms_provider_circuit_open{{channel="{channel}",provider="{provider}"}}' in text
        assert f'channel="{channel}",event="sent",provider="{provider}"' in text
    body = make_client(tenant, [Scope.MESSAGES_READ]).get("/api/v1/stats/channels").json()
    names = {(p["channel"], p["provider"]) for p in body["providers"]}
    assert {("sms", "bandwidth"), ("sms", "vonage"), ("email", "postal")} <= names


def test_the_settings_rate_limit_applies_by_provider_name(api, chain, settings):
    bw, _vg, _pm = chain
    settings.COMMS_PROVIDER_RATE_LIMITS = {"bandwidth": 1}
    settings.COMMS_CHANNEL_FAILOVER = {}
    routing.clear_cache()
    ids = [_send(api, "sms", f"+1415555012{i}") for i in range(3)]
    drain_all()
    statuses = sorted(Message.objects.get(id=i).status for i in ids)
    assert statuses.count(Status.SENT) == 1 and len(bw.messages) == 1  # 1/s: the others wait their turn


def test_start_up_check_names_a_chained_provider_without_credentials(settings):
    from delivery.checks import provider_credentials

    settings.COMMS_VONAGE = {"api_key": "", "api_secret": "", "from_number": ""}
    settings.COMMS_CHANNEL_FAILOVER = {"sms": [VONAGE_PATH]}
    messages = [e.msg for e in provider_credentials(None)]
    assert any("VonageProvider" in m and "api_key is missing" in m for m in messages), messages


def test_a_chain_without_a_primary_in_settings_still_serves_the_channel(api, chain, settings, tenant):
    _bw, vg, _pm = chain
    settings.COMMS_CHANNEL_PROVIDERS = {k: v for k, v in settings.COMMS_CHANNEL_PROVIDERS.items() if k != "sms"}
    settings.COMMS_CHANNEL_FAILOVER = {"sms": ["delivery.providers.vonage.VonageProvider"]}
    routing.clear_cache()
    assert [s.name for s in routing.provider_specs(tenant_id=tenant.pk, channel="sms")] == ["vonage"]
    message_id = _send(api, "sms", "+14155550123")
    drain_all()
    assert Message.objects.get(id=message_id).provider == "vonage" and len(vg.messages) == 1
