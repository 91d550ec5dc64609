"""Web Push test support: the loopback push service (which decrypts) and a provider row pointing at it."""

from __future__ import annotations

import pytest

from comms import webpush as kernel_webpush
from comms.devserver.standins.webpush import WebPushStandIn
from delivery.models import ChannelProvider


@pytest.fixture
def vapid(settings, tmp_path):
    """A fresh VAPID pair in this test's own key file."""
    settings.COMMS_WEBPUSH = {**settings.COMMS_WEBPUSH, "vapid_file": str(tmp_path / "vapid.json")}
    public, created = kernel_webpush.vapid_generate()
    assert created
    return public


@pytest.fixture
def push_service(settings, tmp_path, vapid, db):
    """The stand-in push service, loopback allowed for outbound requests (as the webhook tests do), and
    a `webpush` push provider row trusting the stand-in's certificate."""
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    stand_in = WebPushStandIn(folder=tmp_path / "pki")
    ChannelProvider.objects.create(channel="push", name="webpush", provider_class="delivery.providers.webpush.WebPushProvider",
                                   is_primary=True, options={"ca_bundle": str(stand_in.cert), "timeout": 3})
    yield stand_in
    stand_in.close()
