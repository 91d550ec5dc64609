"""Conversation fixtures: recipients of the default tenant, their end-user tokens, an API client."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from comms.models import Recipient
from delivery.inbox import inbox_token


def end_user(recipient: Recipient) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Inbox {inbox_token(recipient=recipient)}")
    return client


@pytest.fixture
def people(tenant):
    """alice, bob, carol: recipients of the default tenant."""
    return {name: Recipient.objects.create(tenant=tenant, external_id=name, email=f"{name}@example.com")
            for name in ("alice", "bob", "carol")}


@pytest.fixture
def conversation(api, people):
    """A group conversation of alice and bob (carol is not in it), created through the API."""
    response = api.post("/api/v1/conversations", {"kind": "group", "subject": "Trip", "participants": [
        {"recipient_id": "alice", "display_name": "Alice"}, {"recipient_id": "bob", "display_name": "Bob"}]},
        format="json")
    assert response.status_code == 201, response.json()
    return response.json()
