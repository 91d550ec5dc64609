"""The conversation REST API: services and end users, messages, edits, deletes, read horizons."""

from __future__ import annotations

import pytest

from comms.models import AuditEntry
from comms.conversations.models import ConversationMessage, MessageRevision
from tests.conversations.conftest import end_user

pytestmark = pytest.mark.django_db


def _post(client, conv, body, **extra):
    return client.post(f"/api/v1/conversations/{conv['id']}/messages", {"body": body, **extra}, format="json")


def test_create_list_and_detail_with_participants(api, api_conversation, people):
    assert api_conversation["kind"] == "group" and api_conversation["state"] == "open"
    names = [p["display_name"] for p in api_conversation["participants"]]
    assert names == ["Alice", "Bob"] and all(p["joined_at"] and p["left_at"] is None
                                               for p in api_conversation["participants"])
    listed = api.get("/api/v1/conversations?recipient_id=alice").json()["results"]
    assert [c["id"] for c in listed] == [api_conversation["id"]]
    assert api.get("/api/v1/conversations?recipient_id=carol").json()["results"] == []
    detail = api.get(f"/api/v1/conversations/{api_conversation['id']}").json()
    assert {p["recipient_id"]: p["unread"] for p in detail["participants"]} == {"alice": 0, "bob": 0}


def test_end_user_posts_reads_and_counts_unread(api, api_conversation, people):
    alice, bob = end_user(people["alice"]), end_user(people["bob"])
    first = _post(alice, api_conversation, "Hello **Bob**")
    assert first.status_code == 201
    msg = first.json()
    assert msg["index"] == 1 and msg["body_html"] == "<p>Hello <strong>Bob</strong></p>"
    assert msg["sender"]["recipient_id"] == "alice"
    _post(alice, api_conversation, "Are you there?")
    mine = bob.get("/api/v1/conversations").json()["results"]
    assert [(c["id"], c["unread"]) for c in mine] == [(api_conversation["id"], 2)]
    assert alice.get("/api/v1/conversations").json()["results"][0]["unread"] == 0  # own messages are read
    read = bob.post(f"/api/v1/conversations/{api_conversation['id']}/read", {"index": 1}, format="json").json()
    assert read["last_read_index"] == 1 and read["unread"] == 1
    # The horizon never moves back, and never past the last message.
    assert bob.post(f"/api/v1/conversations/{api_conversation['id']}/read", {"index": 0}, format="json").json()[
        "last_read_index"] == 1
    assert bob.post(f"/api/v1/conversations/{api_conversation['id']}/read", {"index": 99}, format="json").json()[
        "last_read_index"] == 2


def test_service_acts_for_a_named_participant(api, api_conversation):
    missing = _post(api, api_conversation, "hi")
    assert missing.status_code == 400 and missing.json()["code"] == "COMMS_ACTING_PARTICIPANT_REQUIRED"
    ok = _post(api, api_conversation, "hi", recipient_id="bob")
    assert ok.status_code == 201 and ok.json()["sender"]["recipient_id"] == "bob"
    stranger = _post(api, api_conversation, "hi", recipient_id="carol")
    assert stranger.status_code == 404 and stranger.json()["code"] == "COMMS_PARTICIPANT_NOT_FOUND"


def test_idempotent_client_key(api_conversation, people):
    alice = end_user(people["alice"])
    first = _post(alice, api_conversation, "once", client_key="k-1")
    again = _post(alice, api_conversation, "once", client_key="k-1")
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = _post(alice, api_conversation, "twice", client_key="k-1")
    assert other.status_code == 409 and other.json()["code"] == "COMMS_IDEMPOTENCY_CONFLICT"
    # The key is per sender: bob may use the same one.
    assert _post(end_user(people["bob"]), api_conversation, "bob's", client_key="k-1").status_code == 201
    assert ConversationMessage.objects.count() == 2


def test_cursor_pagination_after_and_before(api_conversation, people):
    alice = end_user(people["alice"])
    for i in range(1, 8):
        _post(alice, api_conversation, f"m{i}")
    url = f"/api/v1/conversations/{api_conversation['id']}/messages"
    latest = alice.get(url + "?limit=3").json()
    assert [m["index"] for m in latest["results"]] == [5, 6, 7] and latest["has_more"]
    back = alice.get(url + f"?limit=3&before={latest['prev_before']}").json()
    assert [m["index"] for m in back["results"]] == [2, 3, 4] and back["has_more"]
    fwd = alice.get(url + "?after=5").json()
    assert [m["index"] for m in fwd["results"]] == [6, 7] and not fwd["has_more"]


def test_reply_threads_inside_the_conversation(api_conversation, people):
    alice = end_user(people["alice"])
    root = _post(alice, api_conversation, "question").json()
    reply = _post(end_user(people["bob"]), api_conversation, "answer", reply_to=root["id"]).json()
    assert reply["reply_to"] == {"id": root["id"], "index": 1}


def test_edit_keeps_revisions_and_audit(api_conversation, people):
    alice = end_user(people["alice"])
    msg = _post(alice, api_conversation, "helo").json()
    edited = alice.put(f"/api/v1/conversations/messages/{msg['id']}", {"body": "hello"}, format="json")
    assert edited.status_code == 200 and edited.json()["body"] == "hello" and edited.json()["edited_at"]
    rev = MessageRevision.objects.get(message_id=msg["id"])
    assert rev.action == "edit" and rev.previous_body == "helo" and rev.editor.recipient.external_id == "alice"
    assert AuditEntry.objects.filter(action="conversation.message.edit", target_id=msg["id"]).exists()


def test_delete_tombstones_and_keeps_the_body_in_revisions(api, api_conversation, people):
    alice = end_user(people["alice"])
    msg = _post(alice, api_conversation, "secret plan").json()
    gone = alice.delete(f"/api/v1/conversations/messages/{msg['id']}")
    assert gone.status_code == 200 and gone.json()["deleted"] and gone.json()["body"] == ""
    listed = alice.get(f"/api/v1/conversations/{api_conversation['id']}/messages").json()["results"]
    assert listed[0]["deleted"] and listed[0]["body"] == "" and listed[0]["body_html"] == "" and listed[0]["index"] == 1
    rev = MessageRevision.objects.get(message_id=msg["id"])
    assert rev.action == "delete" and rev.previous_body == "secret plan"
    assert AuditEntry.objects.filter(action="conversation.message.delete", target_id=msg["id"]).exists()


def test_an_agent_participant_may_delete_others_messages(api, api_conversation, people):
    bob_msg = _post(end_user(people["bob"]), api_conversation, "spam").json()
    api.post(f"/api/v1/conversations/{api_conversation['id']}/participants",
             {"recipient_id": "carol", "role": "agent"}, format="json")
    done = api.delete(f"/api/v1/conversations/messages/{bob_msg['id']}?recipient_id=carol")
    assert done.status_code == 200 and done.json()["deleted"]


def test_participants_join_and_leave(api, api_conversation, people):
    url = f"/api/v1/conversations/{api_conversation['id']}/participants"
    added = api.post(url, {"recipient_id": "carol", "role": "observer"}, format="json")
    assert added.status_code == 201 and added.json()["role"] == "observer"
    again = api.post(url, {"recipient_id": "carol"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "COMMS_PARTICIPANT_EXISTS"
    carol = end_user(people["carol"])
    assert carol.get(f"/api/v1/conversations/{api_conversation['id']}").status_code == 200
    left = carol.delete(f"{url}/{added.json()['id']}")
    assert left.status_code == 200 and left.json()["left_at"]
    assert carol.get(f"/api/v1/conversations/{api_conversation['id']}").status_code == 403
    # ...and she can join again later (a new participant row; the old one keeps its times).
    assert api.post(url, {"recipient_id": "carol"}, format="json").status_code == 201


def test_staff_participant_and_close(api, api_conversation, django_user_model):
    django_user_model.objects.create_user("agent1", "a@example.com", "pw", is_staff=True)
    url = f"/api/v1/conversations/{api_conversation['id']}/participants"
    added = api.post(url, {"staff_username": "agent1", "role": "agent"}, format="json").json()
    assert added["staff"] and added["recipient_id"] is None
    closed = api.post(f"/api/v1/conversations/{api_conversation['id']}/close")
    assert closed.json()["state"] == "closed"
    refused = _post(api, api_conversation, "late", recipient_id="alice")
    assert refused.status_code == 409 and refused.json()["code"] == "COMMS_CONVERSATION_CLOSED"


def test_end_user_with_the_token_in_the_query_deletes_their_message(api_conversation, people):
    """`?token=` is the credential, not an unknown field of the DELETE (EventSource-style clients)."""
    from rest_framework.test import APIClient

    from delivery.inbox import inbox_token

    msg = _post(end_user(people["alice"]), api_conversation, "oops").json()
    token = inbox_token(recipient=people["alice"])
    gone = APIClient().delete(f"/api/v1/conversations/messages/{msg['id']}?token={token}")
    assert gone.status_code == 200 and gone.json()["deleted"]
