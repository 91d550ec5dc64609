"""Secrets: encrypted at rest with a rotatable key, and never written to a log line."""

from __future__ import annotations

import base64
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from comms import crypto
from comms.models import Scope
from comms.services import api_key_create
from delivery.models import ChannelProvider, DeliveryLog, Message, WebhookEndpoint
from delivery.services import SendSpec, drain_all, message_enqueue
from delivery.services.webhooks import endpoint_create
from tests.delivery.conftest import TOKEN
from comms.devserver.standins.http_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings):
    yield settings
    crypto.reset_keys()


def _raw(table: str, column: str, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 (test-only names)
        return cursor.fetchone()[0]


def test_secrets_are_encrypted_at_rest_and_survive_a_key_rotation(tenant, keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys.COMMS_ENCRYPTION_KEY = old
    crypto.reset_keys()
    provider = ChannelProvider(channel="email", name="relay", provider_class="delivery.providers.smtp.SmtpProvider")
    provider.credentials = {"username": "relay-user", "password": "hunter2-relay-password"}
    provider.save()
    keys.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    endpoint, secret = endpoint_create(tenant=tenant, url="http://127.0.0.1:9/in")
    stored = _raw("delivery_channelprovider", "credentials_encrypted", provider.pk)
    assert "hunter2" not in stored and Fernet(old.encode()).decrypt(stored.encode())

    keys.COMMS_ENCRYPTION_KEY = f"{new},{old}"  # new key first: encrypts; the old one still decrypts
    crypto.reset_keys()
    assert ChannelProvider.objects.get(pk=provider.pk).credentials["password"] == "hunter2-relay-password"
    call_command("comms_rotate_secrets", stdout=open("/dev/null", "w"))
    rotated = _raw("delivery_channelprovider", "credentials_encrypted", provider.pk)
    assert rotated != stored and Fernet(new.encode()).decrypt(rotated.encode())

    keys.COMMS_ENCRYPTION_KEY = new  # the old key is gone: everything still reads
    crypto.reset_keys()
    assert ChannelProvider.objects.get(pk=provider.pk).credentials["password"] == "hunter2-relay-password"
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secrets(now=endpoint.created_at) == [secret]
    keys.COMMS_ENCRYPTION_KEY = Fernet.generate_key().decode()  # a wrong key says so, it does not guess
    crypto.reset_keys()
    with pytest.raises(ValueError, match="cannot be decrypted"):
        ChannelProvider.objects.get(pk=provider.pk).credentials


def test_no_secret_reaches_a_log_line(tenant, api, twilio, smtp_sink, caplog, settings, client):  # noqa: F811
    """Drive every path that handles a secret, failing ones included, with all loggers at DEBUG."""
    caplog.set_level(logging.DEBUG)
    secrets = [TOKEN, api.raw_key, api.raw_key.split("_", 2)[2]]
    # API keys: a good call, a bad one, a new key.
    assert api.get("/api/v1/messages").status_code == 200
    api.credentials(HTTP_AUTHORIZATION=api.raw_key[:-3] + "xyz")
    _, new_key = api_key_create(tenant=tenant, name="ci", scopes=[Scope.MESSAGES_SEND])
    secrets.append(new_key)
    # SMTP relay credentials, refused by a server that offers no AUTH (the error is logged).
    relay = ChannelProvider(channel="email", name="relay", provider_class="delivery.providers.smtp.SmtpProvider",
                            is_primary=True, options={"host": "127.0.0.1", "port": settings.EMAIL_PORT})
    relay.credentials = {"username": "relay-user", "password": "hunter2-relay-password"}
    relay.save()
    secrets.append("hunter2-relay-password")
    # Twilio auth token: one send accepted, one refused by the stand-in.
    twilio.failures["+14155550999"] = [(401, 20003, "Authenticate")]
    for to in ("+14155550123", "+14155550999"):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="sms", to=to, body="code 1234"))
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="a@example.com", subject="s", body="b"))
    # Webhook signing secret: one delivery.
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    receiver = Receiver()
    try:
        _, whsec = endpoint_create(tenant=tenant, url=f"{receiver.url}/in")
        secrets.append(whsec)
        message_enqueue(tenant=tenant, spec=SendSpec(channel="webhook", to=f"{receiver.url}/in", body="{}"))
        drain_all()
    finally:
        receiver.close()
    # An inbound webhook with the wrong basic-auth password, and one with the right one.
    settings.COMMS_POSTMARK_WEBHOOK_AUTH = "postmark:inbound-webhook-password"
    secrets.append("inbound-webhook-password")
    for password in ("inbound-webhook-password", "guessed-password-123"):
        header = "Basic " + base64.b64encode(f"postmark:{password}".encode()).decode()
        client.post("/webhooks/postmark", data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=header)

    assert Message.objects.filter(channel="sms").count() == 2 and Message.objects.count() >= 4
    email = Message.objects.get(channel="email")
    assert email.status != "sent" and email.failure_reason  # the relay refused our credentials ...
    assert "Twilio API Request" in caplog.text and "refused" in caplog.text  # ... SDKs and intake logged
    stored = " ".join(str(v) for v in DeliveryLog.objects.values_list("detail", "data"))
    stored += " ".join(Message.objects.values_list("failure_reason", flat=True))
    for secret in secrets:  # ... without any secret, in logs or in what the API shows
        assert secret not in caplog.text, secret
        assert secret not in stored, secret
    assert "guessed-password-123" not in caplog.text
