"""End to end over HTTP: a message goes out through the Bandwidth, Vonage and Postal stand-ins, and each
stand-in posts its receipt (authenticated or signed as the vendor does) to our running web server."""

from __future__ import annotations

import pytest

from comms.devserver.standins.bandwidth import BandwidthStandIn
from comms.devserver.standins.postal import PostalStandIn
from comms.devserver.standins.vonage import VonageStandIn
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from preferences.services import is_suppressed
from tests.delivery.sms_gateways import BW, VONAGE, bandwidth_row, vonage_row
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db(transaction=True)


def _send(api, channel, to, **extra) -> Message:
    response = api.post("/api/v1/messages", {"channel": channel, "to": to, "body": "Hello", "subject": "Hi",
                                             **extra}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    return Message.objects.get(id=response.json()["id"])


def test_receipts_come_back_over_http_and_move_the_statuses(live_server, api, settings, tenant):
    bw = BandwidthStandIn(BW["account_id"], BW["username"], BW["password"], application_id=BW["application_id"],
                          callback_url=f"{live_server.url}/webhooks/bandwidth", callback_auth=BW["callback_auth"],
                          receipt_delay=None)
    settings.COMMS_VONAGE_SIGNATURE_SECRET, settings.COMMS_VONAGE_SIGNATURE_METHOD = VONAGE["signature_secret"], "sha256"
    vg = VonageStandIn(VONAGE["api_key"], VONAGE["api_secret"], signature_secret=VONAGE["signature_secret"],
                       signature_method="sha256", dlr_url=f"{live_server.url}/webhooks/vonage/dlr",
                       inbound_url=f"{live_server.url}/webhooks/vonage/inbound", receipt_delay=None)
    pm = PostalStandIn("pk", webhook_url=f"{live_server.url}/webhooks/postal", receipt_delay=None)
    settings.COMMS_POSTAL_WEBHOOK_KEYS = [pm.public_key]
    try:
        row = bandwidth_row(bw, order=1)
        first = _send(api, "sms", "+14155550123")
        assert first.provider == "bandwidth"
        # Bandwidth down for good: the next message fails over to Vonage, whose DLR says delivered.
        row.status = ChannelProvider.State.DISABLED
        row.save()
        vonage_row(vg, primary=False, order=2)
        from delivery import routing

        routing.clear_cache()
        second = _send(api, "sms", "+14155550124")
        assert second.provider == "vonage"
        email_row = ChannelProvider(channel="email", name="postal", is_primary=True,
                                    provider_class="delivery.providers.anymail_esp.PostalProvider",
                                    options={"api_url": pm.api_url, "from_email": "orders@shop.example.com"})
        email_row.credentials = {"api_key": "pk"}
        email_row.save()
        routing.clear_cache()
        pm.outcomes["ada@example.com"] = "bounce"
        third = _send(api, "email", "ada@example.com")
        assert third.provider == "postal"
        answers = bw.receipts.flush() + vg.receipts.flush() + pm.receipts.flush()
        assert [status for status, _ in answers] == [200, 200, 200], answers
        assert bw.inbound("+14155550199", "STOP", to="+15005550006")[0] == 200
        assert vg.inbound("+14155550198", "STOP", to="15005550007")[0] == 200
        webhooks_process_pending()
        statuses = {m.provider: m.status for m in Message.objects.all()}
        assert statuses == {"bandwidth": Status.DELIVERED, "vonage": Status.DELIVERED, "postal": Status.BOUNCED}
        assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
        assert is_suppressed(tenant=tenant, channel="sms", address="+14155550199")
        assert is_suppressed(tenant=tenant, channel="sms", address="+14155550198")
        assert set(WebhookEvent.objects.values_list("provider", flat=True)) == {
            "bandwidth", "vonage", "postal", "vonage_sms"}
        assert not WebhookEvent.objects.filter(signature_valid=False).exists()
    finally:
        bw.close()
        vg.close()
        pm.close()
