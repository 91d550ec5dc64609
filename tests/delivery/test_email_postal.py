"""Email through a Postal server: django-anymail's Postal backend against a loopback stand-in of Postal's
send API (X-Server-API-Key; HTTP 200 with {"status": "success"|"error", ...})."""

from __future__ import annotations

import pytest

from comms.devserver.standins.postal import PostalStandIn
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.providers.anymail_esp import PostalProvider
from delivery.services import drain_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def postal():
    stand_in = PostalStandIn("postal-key-1", receipt_delay=None)
    row = ChannelProvider(channel="email", name="postal", is_primary=True,
                          provider_class="delivery.providers.anymail_esp.PostalProvider",
                          options={"api_url": stand_in.api_url, "from_email": "Shop <orders@shop.example.com>"})
    row.credentials = {"api_key": "postal-key-1"}
    row.save()
    yield stand_in
    stand_in.close()


def _email(api, to="ada@example.com"):
    response = api.post("/api/v1/messages", {"channel": "email", "to": to, "subject": "Receipt", "body": "Thanks",
                                             "body_html": "<p>Hello Ada</p>"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_email_goes_out_through_postal_with_its_headers(api, postal):
    message_id = _email(api)
    assert drain_all().sent == 1
    [request] = postal.requests
    body = request["json"]
    assert request["path"] == "/api/v1/send/message"
    assert (body["to"], body["from"], body["subject"]) == (["ada@example.com"], "Shop <orders@shop.example.com>",
                                                            "Receipt")
    assert "Hello Ada" in body["html_body"] and body["plain_body"].startswith("Thanks")
    assert "List-Unsubscribe" in body["headers"]  # the email channel's compliance headers reach Postal
    message = Message.objects.get(id=message_id)
    # Postal's per-recipient id (a number) is what its webhooks carry as message.id.
    assert message.status == Status.SENT and message.provider == "postal"
    assert message.provider_ref.isdigit()


@pytest.mark.parametrize("code,status,failure", [
    ("UnauthenticatedFromAddress", Status.FAILED, "UnauthenticatedFromAddress"),
    ("NoRecipients", Status.FAILED, "NoRecipients"),
    ("InvalidServerAPIKey", Status.QUEUED, "InvalidServerAPIKey"),  # ours to fix: retried
])
def test_postal_error_codes_are_classified(api, postal, code, status, failure):
    postal.fail(code, "refused")
    message_id = _email(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (status, failure)


def test_a_wrong_api_key_is_transient_and_a_5xx_too(api, postal):
    ChannelProvider.objects.filter(name="postal").update()
    row = ChannelProvider.objects.get(name="postal")
    row.credentials = {"api_key": "wrong"}
    row.save()
    first = _email(api)
    drain_all()
    assert Message.objects.get(id=first).failure_code == "InvalidServerAPIKey"
    row.credentials = {"api_key": "postal-key-1"}
    row.save()
    from delivery import routing

    routing.clear_cache()
    postal.fail_http(503)
    second = _email(api, to="bob@example.com")
    drain_all()
    assert (Message.objects.get(id=second).status, Message.objects.get(id=second).failure_code) == (
        Status.QUEUED, "503")


def test_postal_from_settings_and_its_start_up_check(settings):
    settings.COMMS_POSTAL = {"api_url": "", "api_key": ""}
    assert PostalProvider.config_problems({}) == ["backend_options.api_key is missing"]
    settings.COMMS_POSTAL = {"api_url": "", "api_key": "k"}
    assert "api_url is missing" in PostalProvider.config_problems({})[0]
    settings.COMMS_POSTAL = {"api_url": "https://postal.example.com", "api_key": "k"}
    assert PostalProvider.config_problems({}) == []


def test_a_vendor_code_longer_than_the_log_column_is_cut_not_a_crash():
    """Regression: Postal's 'postal_UnauthenticatedFromAddress' (33 characters) failed the outcome write."""
    from delivery.providers.base import SendResult

    assert len(SendResult.permanent("x" * 40, "d").code) == 32
    assert len(SendResult.transient("y" * 40, "d").code) == 32
