"""Credential guessing is locked out (and logged); public endpoints have per-address budgets."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from comms.models import Recipient
from comms.throttles import public_rate_limit
from delivery.inbox import inbox_token

pytestmark = pytest.mark.django_db


def test_guessing_api_keys_locks_the_address_out_and_logs_it_once(api, settings, caplog):
    settings.COMMS_AUTH_FAILURE_LIMIT = 5
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    prefix = api.raw_key.split("_")[1]
    caplog.set_level(logging.WARNING, logger="comms.security")
    codes = []
    for i in range(7):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer ck_{prefix}_wrong{i}")
        codes.append(guesser.get("/api/v1/messages").status_code)
    assert codes == [401] * 5 + [429] * 2
    # Locked out: even the right key is refused from that address for the rest of the window ...
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {api.raw_key}")
    locked = guesser.get("/api/v1/messages")
    assert locked.status_code == 429 and locked.json()["code"] == "COMMS_RATE_LIMITED"
    assert int(locked["Retry-After"]) >= 1
    # ... while every other address goes on working.
    assert api.get("/api/v1/messages").status_code == 200
    lockouts = [r for r in caplog.records if "lockout" in r.getMessage()]
    assert len(lockouts) == 1 and "203.0.113.7" in lockouts[0].getMessage()
    assert api.raw_key.split("_", 2)[2] not in caplog.text  # the secret part (may contain "_") never reaches a log


def test_guessing_inbox_tokens_is_locked_out_too(tenant, settings):
    settings.COMMS_AUTH_FAILURE_LIMIT = 3
    recipient = Recipient.objects.create(tenant=tenant, external_id="u1")
    client = APIClient(REMOTE_ADDR="198.51.100.9")
    codes = [client.get("/api/v1/inbox", HTTP_AUTHORIZATION=f"Inbox forged{i}").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    real = client.get("/api/v1/inbox", HTTP_AUTHORIZATION=f"Inbox {inbox_token(recipient=recipient)}")
    assert real.status_code == 429
    other = APIClient(REMOTE_ADDR="198.51.100.10")
    assert other.get("/api/v1/inbox", HTTP_AUTHORIZATION=f"Inbox {inbox_token(recipient=recipient)}").status_code == 200


def test_public_rate_limit_decorator_budgets_each_address_and_scope(settings):
    settings.COMMS_PUBLIC_RATES = {"demo": "3/min"}

    @public_rate_limit("demo")
    def page(request):
        return HttpResponse("ok")

    factory = RequestFactory()
    first = [page(factory.get("/u/x", REMOTE_ADDR="192.0.2.1")).status_code for _ in range(4)]
    assert first == [200, 200, 200, 429]
    refused = page(factory.get("/u/x", REMOTE_ADDR="192.0.2.1"))
    assert refused["Retry-After"] and refused["Content-Type"].startswith("text/plain")
    api_refused = page(factory.get("/webhooks/x", REMOTE_ADDR="192.0.2.1"))
    assert api_refused.status_code == 429 and b"COMMS_RATE_LIMITED" in api_refused.content
    assert page(factory.get("/u/x", REMOTE_ADDR="192.0.2.2")).status_code == 200  # another address


def test_click_open_and_webhook_intake_have_per_address_budgets(client, settings):
    settings.COMMS_PUBLIC_RATES = {"click": "2/min", "open": "2/min", "webhooks": "2/min"}
    for url, method in (("/c/not-a-token", client.get), ("/o/not-a-token.gif", client.get),
                        ("/webhooks/postmark", client.post)):
        codes = [method(url, REMOTE_ADDR="192.0.2.50").status_code for _ in range(3)]
        assert codes[2] == 429 and 429 not in codes[:2], (url, codes)
        assert method(url, REMOTE_ADDR="192.0.2.51").status_code != 429


def test_each_key_request_counts_once_against_its_budget(api, make_client, tenant, settings):
    """The key's budget is counted in the lockout check's round trip; the throttle must not count it again."""
    from comms.models import Scope
    from comms.redis import redis_client

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    codes = [api.get("/api/v1/messages").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    prefix = api.raw_key.split("_")[1]
    counted = [int(redis_client().get(k)) for k in redis_client().keys(f"comms:throttle:{prefix}:*")]
    assert counted == [4]  # one count per request, not two
    other = make_client(tenant, [Scope.MESSAGES_READ])
    assert other.get("/api/v1/messages").status_code == 200  # another key has its own budget
