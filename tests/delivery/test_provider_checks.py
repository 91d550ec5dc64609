"""The start-up system check refuses providers that lack a required credential."""

from __future__ import annotations

import subprocess
import sys

import pytest

from comms.crypto import encrypt_json
from delivery.checks import provider_credentials
from delivery.models import ChannelProvider
from tests.conftest import ROOT, worker_env
from comms.devserver.standins.fcm import service_account

pytestmark = pytest.mark.django_db


def _row(name, channel, path, options=None, credentials=None, **extra):
    row = ChannelProvider(name=name, channel=channel, provider_class=path, options=options or {}, **extra)
    row.credentials = credentials or {}
    row.save()
    return row


def _messages():
    return {(e.id, e.msg) for e in provider_credentials(None)}


def test_complete_configuration_passes():
    _row("twilio", "sms", "delivery.providers.twilio.TwilioProvider", {"from_number": "+15005550006"},
         {"account_sid": "AC1", "auth_token": "t"})
    _row("fcm", "push", "delivery.providers.fcm.FcmProvider", {},
         {"service_account": service_account(token_uri="http://127.0.0.1:1/token")})
    _row("sns", "sms", "delivery.providers.sns.SnsProvider", {"region_name": "eu-west-1"})
    _row("sendgrid", "email", "delivery.providers.anymail_esp.AnymailProvider",
         {"backend": "anymail.backends.sendgrid.EmailBackend"}, {"backend_options": {"api_key": "k"}})
    _row("ses", "email", "delivery.providers.anymail_esp.AnymailProvider",
         {"backend": "anymail.backends.amazon_ses.EmailBackend"})
    assert _messages() == set()


def test_missing_credentials_are_errors():
    _row("twilio", "sms", "delivery.providers.twilio.TwilioProvider", {"from_number": "+15005550006"},
         {"account_sid": "AC1"})
    _row("fcm", "push", "delivery.providers.fcm.FcmProvider")
    _row("fcm-file", "push", "delivery.providers.fcm.FcmProvider", {"service_account_file": "/nonexistent/sa.json"})
    _row("sns", "sms", "delivery.providers.sns.SnsProvider", {}, {"aws_access_key_id": "AKIA"})
    _row("postmark", "email", "delivery.providers.anymail_esp.AnymailProvider",
         {"backend": "anymail.backends.postmark.EmailBackend"})
    _row("ghost", "email", "delivery.providers.nope.NopeProvider")
    _row("off", "sms", "delivery.providers.twilio.TwilioProvider", status=ChannelProvider.State.DISABLED)
    found = _messages()
    text = "\n".join(msg for _, msg in found)
    assert {i for i, _ in found} == {"delivery.E002"}
    assert "ChannelProvider 'twilio' (sms): auth_token is missing." in text
    assert "ChannelProvider 'fcm' (push): a service account" in text
    assert "ChannelProvider 'fcm-file' (push): the service account cannot be read" in text
    assert "ChannelProvider 'sns' (sms): region_name (SNS_REGION) is missing." in text
    assert "aws_access_key_id and aws_secret_access_key must be given together" in text
    assert "ChannelProvider 'postmark' (email): backend_options.server_token is missing." in text
    assert "ChannelProvider 'ghost' (email): provider class delivery.providers.nope.NopeProvider cannot be imported" in text
    assert "'off'" not in text


def test_undecryptable_credentials_are_an_error():
    row = _row("twilio", "sms", "delivery.providers.twilio.TwilioProvider")
    ChannelProvider.objects.filter(pk=row.pk).update(credentials_encrypted="gAAAAA-not-a-token")
    assert {i for i, _ in _messages()} == {"delivery.E003"}


def test_settings_providers_are_checked(settings):
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS, "push": "delivery.providers.fcm.FcmProvider"}
    settings.COMMS_FCM = {**settings.COMMS_FCM, "service_account": "", "service_account_file": ""}
    assert any("push provider from settings (FcmProvider): a service account" in msg for _, msg in _messages())


def test_start_up_fails_loudly():
    """`manage.py check` (as comms_bootstrap and migrate run it) exits non-zero and says why."""
    env = {**worker_env(), "FCM_SERVICE_ACCOUNT_FILE": "/nonexistent/fcm.json"}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "delivery.E002" in done.stderr and "FcmProvider" in done.stderr
