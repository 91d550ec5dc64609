"""Fixtures for the inbound webhook tests: signers with real keys, and messages already sent."""

from __future__ import annotations

import secrets

import pytest
from django.utils import timezone

from comms.enums import Status
from delivery.models import Message
from tests.webhooks.signers import SIGNERS


@pytest.fixture
def signer(settings):
    made = []

    def make(name: str):
        s = SIGNERS[name](settings)
        made.append(s)
        return s

    yield make
    for s in made:
        if hasattr(s, "close"):
            s.close()


@pytest.fixture
def sent_message(tenant):
    """A message the engine has handed to a provider (status 'sent', provider_ref recorded)."""

    def make(*, channel="email", address="ada@example.com", ref=None, status=Status.SENT, **fields):
        return Message.objects.create(
            tenant=tenant, channel=channel, recipient_address=address, status=status, provider=fields.pop(
                "provider", "esp"), provider_ref=ref if ref is not None else f"ref-{secrets.token_hex(6)}",
            sent_at=timezone.now() if status != Status.QUEUED else None, subject="Receipt", body="Thanks",
            **fields)

    return make
