"""In-app messages land in the recipient's inbox; the end-user inbox API reads and updates it."""

from __future__ import annotations

import pytest
from django.core import signing
from rest_framework.test import APIClient

from delivery.models import InAppNotification, Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin_api):
    admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json")
    admin_api.put("/api/v1/recipients/u-2", {"email": "u2@example.com"}, format="json")
    token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "u-1"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Inbox {token}")
    return client


def _notify(admin_api, recipient="u-1", **extra):
    response = admin_api.post("/api/v1/messages", {"channel": "in_app", "recipient_id": recipient,
                                                   "subject": "Order shipped", "body": "Track it",
                                                   "metadata": {"deep_link": "app://orders/1"}, **extra},
                              format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_in_app_message_lands_in_the_inbox_and_is_managed(admin_api, inbox):
    first = _notify(admin_api)
    second = _notify(admin_api, subject="Pinned notice", metadata={"pinned": True})
    _notify(admin_api, recipient="u-2")
    assert drain_all().sent == 3
    assert Message.objects.get(id=first).provider == "in_app"

    page = inbox.get("/api/v1/inbox").json()
    assert page["unread"] == 2
    assert [i["title"] for i in page["results"]] == ["Pinned notice", "Order shipped"]  # pinned first
    item = page["results"][1]
    assert item["deep_link"] == "app://orders/1" and item["read"] is False

    assert inbox.post(f"/api/v1/inbox/{item['id']}/read").json()["read"] is True
    assert inbox.get("/api/v1/inbox/unread-count").json() == {"unread": 1}
    assert [i["title"] for i in inbox.get("/api/v1/inbox?status=unread").json()["results"]] == ["Pinned notice"]
    inbox.post(f"/api/v1/inbox/{item['id']}/unread")
    assert inbox.post("/api/v1/inbox/read-all").json() == {"marked_read": 2}
    inbox.post(f"/api/v1/inbox/{item['id']}/archive")
    assert [i["id"] for i in inbox.get("/api/v1/inbox?status=archived").json()["results"]] == [item["id"]]
    assert len(inbox.get("/api/v1/inbox").json()["results"]) == 1
    assert InAppNotification.objects.filter(message_id=second).count() == 1


def test_tokens_open_one_inbox_only(admin_api, inbox):
    _notify(admin_api, recipient="u-2")
    drain_all()
    theirs = InAppNotification.objects.get()
    assert inbox.get("/api/v1/inbox").json()["results"] == []
    assert inbox.post(f"/api/v1/inbox/{theirs.id}/read").status_code == 404
    anonymous = APIClient()
    assert anonymous.get("/api/v1/inbox").json()["code"] == "COMMS_UNAUTHENTICATED"
    forged = signing.dumps({"t": "x", "r": str(theirs.recipient_id)}, salt="wrong-salt")
    anonymous.credentials(HTTP_AUTHORIZATION=f"Inbox {forged}")
    assert anonymous.get("/api/v1/inbox").status_code == 401
    # An inbox token is not an API key, and an API key does not open an inbox.
    assert inbox.get("/api/v1/messages").status_code == 401
    assert admin_api.get("/api/v1/inbox").status_code == 401


def test_expired_token(admin_api, settings, inbox):
    settings.COMMS_INBOX_TOKEN_SECONDS = -1
    response = inbox.get("/api/v1/inbox")
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_unknown_recipient_for_in_app(admin_api):
    response = admin_api.post("/api/v1/messages", {"channel": "in_app", "to": "nobody", "body": "x"}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_RECIPIENT_NOT_FOUND"
