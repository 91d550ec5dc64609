"""Per-category provider routing: a ChannelProvider row may serve only some message categories."""

from __future__ import annotations

import os

import pytest

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery import routing
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from comms.devserver.standins.esp import EspStandIn

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


@pytest.fixture
def marketing_esp():
    stand_in = EspStandIn("sendgrid")
    row = ChannelProvider(channel="email", name="sendgrid-marketing", categories=["marketing"],
                          provider_class="delivery.providers.anymail_esp.AnymailProvider",
                          options={"backend": "anymail.backends.sendgrid.EmailBackend",
                                   "from_email": "news@shop.example.com"})
    row.credentials = {"backend_options": {"api_key": stand_in.key, "api_url": stand_in.api_url}}
    row.save()
    yield stand_in
    stand_in.close()


def _send(api, category, to="ada@example.com"):
    response = api.post("/api/v1/messages", {"channel": "email", "to": to, "subject": category, "body": "b",
                                             "category": category}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_marketing_and_transactional_take_different_providers(api, tenant, marketing_esp, smtp_sink):
    ChannelProvider.objects.create(channel="email", name="relay", provider_class=SMTP, is_primary=True,
                                   categories=["transactional", "security", "operational", "system", "legal"])
    receipt, newsletter = _send(api, "transactional"), _send(api, "marketing")
    drain_all()
    assert Message.objects.get(id=receipt).provider == "relay"
    assert Message.objects.get(id=newsletter).provider == "sendgrid-marketing"
    assert [m["Subject"] for m in smtp_sink.messages] == ["transactional"]
    assert [r["json"]["subject"] for r in marketing_esp.requests] == ["marketing"]
    # Marketing never falls back onto the transactional relay: it is restricted to other categories.
    assert [s.name for s in routing.provider_specs(tenant_id=tenant.id, channel="email", category="marketing")] == [
        "sendgrid-marketing"]


def test_a_category_row_comes_first_and_an_unrestricted_row_is_its_failover(api, tenant, marketing_esp, smtp_sink):
    ChannelProvider.objects.create(channel="email", name="relay", provider_class=SMTP, is_primary=True)
    chain = [s.name for s in routing.provider_specs(tenant_id=tenant.id, channel="email", category="marketing")]
    assert chain == ["sendgrid-marketing", "relay"]
    assert [s.name for s in routing.provider_specs(tenant_id=tenant.id, channel="email", category="security")] == [
        "relay"]
    ChannelProvider.objects.filter(name="sendgrid-marketing").update(
        credentials_encrypted=__import__("comms.crypto", fromlist=["x"]).encrypt_json(
            {"backend_options": {"api_key": "k", "api_url": f"http://127.0.0.1:{free_port()}/v3/"}}))
    routing.clear_cache()
    message_id = _send(api, "marketing")
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "relay")


def test_a_category_no_row_serves_uses_the_settings_default_or_is_refused(api, marketing_esp, smtp_sink, settings):
    receipt = _send(api, "transactional")
    drain_all()
    assert Message.objects.get(id=receipt).provider == "smtp"  # COMMS_CHANNEL_PROVIDERS["email"]
    settings.COMMS_CHANNEL_PROVIDERS = {k: v for k, v in settings.COMMS_CHANNEL_PROVIDERS.items() if k != "email"}
    routing.clear_cache()
    response = api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com", "subject": "s", "body": "b",
                                             "category": "transactional"}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_CHANNEL_UNAVAILABLE"
    assert _send(api, "marketing")


def test_tenant_rows_still_win(api, tenant, other_tenant, smtp_sink):
    ChannelProvider.objects.create(channel="email", name="global-marketing", provider_class=SMTP,
                                   categories=["marketing"], options={"port": int(os.environ["EMAIL_PORT"])})
    ChannelProvider.objects.create(tenant=tenant, channel="email", name="tenant-relay", provider_class=SMTP)
    chain = [s.name for s in routing.provider_specs(tenant_id=tenant.id, channel="email", category="marketing")]
    assert chain == ["tenant-relay", "global-marketing"]
    other = [s.name for s in routing.provider_specs(tenant_id=other_tenant.id, channel="email", category="marketing")]
    assert other == ["global-marketing"]
