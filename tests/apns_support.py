"""APNs test support: the loopback APNs stand-in (HTTP/2 + TLS, checks the provider JWT) and a provider row
pointing at it, with iOS routed to APNs for every tenant."""

from __future__ import annotations

import pytest

from comms.devserver.standins.apns import ApnsStandIn, signing_key
from delivery import routing
from delivery.models import ChannelProvider

TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.shop"
IPHONE, IPAD = "a1" * 32, "b2" * 32


@pytest.fixture
def apns_key():
    return signing_key()


@pytest.fixture
def apns(apns_key, settings):
    """The stand-in trusting our key, an APNs provider row, and iOS routed to APNs for every tenant."""
    stand_in = ApnsStandIn(topics=(TOPIC,))
    stand_in.trust(key_id=KEY_ID, team_id=TEAM, private_pem=apns_key)
    provider = ChannelProvider(channel="push", name="apns", provider_class="delivery.providers.apns.ApnsProvider",
                               order=2, options={"endpoint": stand_in.url, "ca_file": str(stand_in.ca_file),
                                                 "topic": TOPIC, "team_id": TEAM, "timeout": 2})
    provider.credentials = {"key_id": KEY_ID, "private_key": apns_key}
    provider.save()
    settings.COMMS_PUSH_IOS_VIA = "apns"
    yield stand_in
    routing.clear_cache()
    stand_in.close()
