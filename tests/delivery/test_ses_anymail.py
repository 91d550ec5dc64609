"""Email through Amazon SES with django-anymail and boto3, against moto in server mode on loopback."""

from __future__ import annotations

import boto3
import pytest
from moto.server import ThreadedMotoServer

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db
REGION = "eu-west-1"


@pytest.fixture
def ses():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    params = {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": REGION, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    boto3.client("ses", **params).verify_domain_identity(Domain="shop.example.com")
    provider = ChannelProvider(channel="email", name="ses", provider_class="delivery.providers.anymail_esp.AnymailProvider",
                               is_primary=True, options={"backend": "anymail.backends.amazon_ses.EmailBackend",
                                                         "from_email": "Shop <orders@shop.example.com>"})
    provider.credentials = {"backend_options": {"client_params": params}}
    provider.save()
    yield params
    server.stop()


def _sent_by_moto():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages


def test_email_goes_out_through_ses(api, ses):
    response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "Receipt",
                                             "body": "Thanks", "body_html": "<p>Thanks</p>"}, format="json")
    assert drain_all().sent == 1
    message = Message.objects.get(id=response.json()["id"])
    assert (message.status, message.provider) == (Status.SENT, "ses")
    [sent] = _sent_by_moto()
    assert message.provider_ref and message.provider_ref != f"<{message.id}@comms.localhost>"
    raw = getattr(sent, "raw_data", "") or ""
    assert "Receipt" in raw and f"X-Comms-Message-Id: {message.id}" in raw


def test_unverified_sender_is_refused_permanently(api, ses):
    ChannelProvider.objects.filter(name="ses").update(options={
        "backend": "anymail.backends.amazon_ses.EmailBackend", "from_email": "someone@unverified.example"})
    response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "s",
                                             "body": "b"}, format="json")
    drain_all()
    message = Message.objects.get(id=response.json()["id"])
    assert message.status == Status.FAILED and message.provider == "ses"
    assert message.failure_code == "MessageRejected"
