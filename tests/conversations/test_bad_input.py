"""Bad input: typed errors with stable codes, never a 500, and no existence leak across tenants."""

from __future__ import annotations

import uuid

import pytest
from django.core import signing
from rest_framework.test import APIClient

from comms.conversations.services import ParticipantSpec, conversation_create
from comms.models import Recipient
from tests.conversations.conftest import end_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign(other_tenant):
    """A conversation of another tenant, with a recipient also called 'alice' there."""
    alice = Recipient.objects.create(tenant=other_tenant, external_id="alice")
    return conversation_create(tenant=other_tenant, participants=[ParticipantSpec(recipient=alice)])


def test_unknown_and_foreign_conversations_answer_the_same_404(api, api_conversation, people, foreign):
    alice = end_user(people["alice"])
    for client in (api, alice):
        answers = [client.get(f"/api/v1/conversations/{cid}") for cid in (uuid.uuid4(), foreign.id, "not-a-uuid")]
        assert {a.status_code for a in answers} == {404}
        assert len({(a.json()["code"], a.json()["message"]) for a in answers}) == 1
        assert answers[0].json()["code"] == "COMMS_CONVERSATION_NOT_FOUND"
        posted = client.post(f"/api/v1/conversations/{foreign.id}/messages", {"body": "x", "recipient_id": "alice"},
                             format="json")
        assert posted.status_code == 404


def test_not_a_participant_is_403_in_the_same_tenant(api_conversation, people):
    carol = end_user(people["carol"])
    for method, path, body in [("get", "", None), ("get", "/messages", None), ("post", "/messages", {"body": "x"}),
                               ("post", "/read", {"index": 1}), ("get", "/participants", None)]:
        answer = getattr(carol, method)(f"/api/v1/conversations/{api_conversation['id']}{path}", body, format="json")
        assert answer.status_code == 403 and answer.json()["code"] == "COMMS_NOT_PARTICIPANT", path
    assert carol.get("/api/v1/conversations").json()["results"] == []


def test_a_message_of_someone_elses_conversation_is_not_found_for_an_end_user(api_conversation, people):
    msg = end_user(people["alice"]).post(f"/api/v1/conversations/{api_conversation['id']}/messages", {"body": "x"},
                                         format="json").json()
    answer = end_user(people["carol"]).put(f"/api/v1/conversations/messages/{msg['id']}", {"body": "y"},
                                           format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "COMMS_CONVERSATION_MESSAGE_NOT_FOUND"


def test_forged_and_expired_tokens(api_conversation, people, settings):
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Inbox forged")
    answer = forged.get("/api/v1/conversations")
    assert answer.status_code == 401 and answer.json()["code"] == "COMMS_UNAUTHENTICATED"
    other_salt = APIClient()
    other_salt.credentials(HTTP_AUTHORIZATION="Inbox " + signing.dumps(
        {"t": str(people["alice"].tenant_id), "r": str(people["alice"].pk)}, salt="comms.preferences"))
    assert other_salt.get("/api/v1/conversations").status_code == 401
    settings.COMMS_INBOX_TOKEN_SECONDS = -1
    expired = end_user(people["alice"]).get("/api/v1/conversations")
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert APIClient().get("/api/v1/conversations").json()["code"] == "COMMS_UNAUTHENTICATED"


def test_end_users_cannot_create_or_act_for_others(api_conversation, people):
    alice = end_user(people["alice"])
    assert alice.post("/api/v1/conversations", {}, format="json").json()["code"] == "COMMS_FORBIDDEN"
    bob_pid = next(p["id"] for p in api_conversation["participants"] if p["recipient_id"] == "bob")
    answer = alice.post(f"/api/v1/conversations/{api_conversation['id']}/messages", {"body": "x", "participant_id": bob_pid},
                        format="json")
    assert answer.status_code == 403


def test_editing_or_deleting_someone_elses_message(api_conversation, people):
    msg = end_user(people["alice"]).post(f"/api/v1/conversations/{api_conversation['id']}/messages", {"body": "mine"},
                                         format="json").json()
    bob = end_user(people["bob"])
    for answer in (bob.put(f"/api/v1/conversations/messages/{msg['id']}", {"body": "hacked"}, format="json"),
                   bob.delete(f"/api/v1/conversations/messages/{msg['id']}")):
        assert answer.status_code == 403 and answer.json()["code"] == "COMMS_NOT_SENDER"
    again = end_user(people["alice"]).get(f"/api/v1/conversations/messages/{msg['id']}").json()
    assert again["body"] == "mine" and not again["deleted"]


def test_reply_to_a_message_of_another_conversation(api, api_conversation, people):
    other = api.post("/api/v1/conversations", {"participants": [{"recipient_id": "alice"}]}, format="json").json()
    alice = end_user(people["alice"])
    elsewhere = alice.post(f"/api/v1/conversations/{other['id']}/messages", {"body": "there"}, format="json").json()
    for reply_to in (elsewhere["id"], str(uuid.uuid4()), "garbage"):
        answer = alice.post(f"/api/v1/conversations/{api_conversation['id']}/messages",
                            {"body": "reply", "reply_to": reply_to}, format="json")
        assert answer.status_code == 422 and answer.json()["code"] == "COMMS_REPLY_OUTSIDE_CONVERSATION"


@pytest.mark.parametrize("body, code", [
    ("x" * 8001, "COMMS_MESSAGE_TOO_LARGE"),
    (">" * 5000 + " deep", "COMMS_MESSAGE_TOO_LARGE"),
    ("\n".join("  " * i + "- item" for i in range(200)), "COMMS_MESSAGE_TOO_LARGE"),
    (12, "COMMS_VALIDATION_ERROR"),
    ({"nested": "object"}, "COMMS_VALIDATION_ERROR"),
    ("", "COMMS_VALIDATION_ERROR"),
])
def test_huge_deep_and_wrongly_typed_bodies(api_conversation, people, body, code):
    answer = end_user(people["alice"]).post(f"/api/v1/conversations/{api_conversation['id']}/messages", {"body": body},
                                            format="json")
    assert answer.status_code == 400 and answer.json()["code"] == code


def test_deeply_nested_json_is_refused(api_conversation, people):
    raw = '{"body": "x", "client_key": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = end_user(people["alice"]).generic("POST", f"/api/v1/conversations/{api_conversation['id']}/messages", raw,
                                               content_type="application/json")
    assert answer.status_code == 400 and answer.json()["code"] in ("COMMS_JSON_TOO_DEEP", "COMMS_INVALID_JSON")


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "before=1.5", "after=99999999999999", "limit=0",
                                   "limit=1000", "state=weird"])
def test_bad_cursors_and_limits(api_conversation, people, query):
    url = f"/api/v1/conversations/{api_conversation['id']}/messages?{query}"
    if query.startswith("state"):
        url = f"/api/v1/conversations?{query}"
    answer = end_user(people["alice"]).get(url)
    assert answer.status_code == 400
    assert answer.json()["code"] in ("COMMS_BAD_CURSOR", "COMMS_VALIDATION_ERROR")
    if query.startswith(("after", "before")):
        assert answer.json()["code"] == "COMMS_BAD_CURSOR"


def test_markdown_is_sanitised(api_conversation, people):
    body = ('<script>alert(1)</script> <img src=x onerror=alert(1)> ![i](https://x/y.png) '
            '[js](javascript:alert(1)) [ok](https://example.com) <a href="https://evil">raw</a>')
    html = end_user(people["alice"]).post(f"/api/v1/conversations/{api_conversation['id']}/messages", {"body": body},
                                          format="json").json()["body_html"]
    # Only escaped text is left of the raw HTML; the tags themselves are gone.
    assert "<script" not in html and "<img" not in html and '<a href="https://evil"' not in html
    assert 'href="javascript' not in html and "<a rel" in html  # the js: link lost its href
    assert '<a href="https://example.com" rel="nofollow noopener">ok</a>' in html
    assert "&lt;img" in html  # raw HTML is shown as text, not parsed


def test_unknown_fields_and_wrong_types_in_other_bodies(api, api_conversation):
    assert api.post("/api/v1/conversations", {"kind": "party"}, format="json").json()["code"] == "COMMS_VALIDATION_ERROR"
    assert api.post("/api/v1/conversations", {"participants": [{"recipient_id": "nobody"}]},
                    format="json").json()["code"] == "COMMS_RECIPIENT_NOT_FOUND"
    assert api.post("/api/v1/conversations", {"bogus": 1}, format="json").json()["code"] == "COMMS_UNKNOWN_FIELD"
    read = api.post(f"/api/v1/conversations/{api_conversation['id']}/read", {"index": "3", "recipient_id": "alice"},
                    format="json")
    assert read.status_code == 400
    gone = api.delete(f"/api/v1/conversations/{api_conversation['id']}/participants/{uuid.uuid4()}")
    assert gone.status_code == 404 and gone.json()["code"] == "COMMS_PARTICIPANT_NOT_FOUND"
    assert api.put(f"/api/v1/conversations/messages/{uuid.uuid4()}", {"body": "x", "recipient_id": "alice"},
                   format="json").status_code == 404
