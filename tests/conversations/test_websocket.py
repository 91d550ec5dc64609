"""The conversations WebSocket over two real ASGI processes (uvicorn) sharing the Redis channel layer:
client A on process 1 and client B on process 2 see each other's messages, typing and presence."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from comms.conversations import presence, realtime
from comms.conversations.models import Participant, Receipt
from comms.conversations.services import ParticipantSpec, conversation_create
from comms.models import Recipient
from delivery.inbox import inbox_token
from tests.conftest import _uvicorn, serving
from tests.conversations.wsclient import Socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_processes():
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(serving(_uvicorn, f"uvicorn-{i}")) for i in (1, 2)]


@pytest.fixture
def chat(tenant):
    alice = Recipient.objects.create(tenant=tenant, external_id="alice")
    bob = Recipient.objects.create(tenant=tenant, external_id="bob")
    conversation = conversation_create(tenant=tenant, kind="direct", participants=[
        ParticipantSpec(recipient=alice, display_name="Alice"), ParticipantSpec(recipient=bob, display_name="Bob")])
    return conversation, inbox_token(recipient=alice), inbox_token(recipient=bob)


def _participant(conversation, name: str) -> str:
    return str(Participant.objects.get(conversation=conversation, recipient__external_id=name).id)


def test_messages_typing_receipts_and_presence_cross_processes(two_processes, chat):
    one, two = two_processes
    conversation, alice_token, bob_token = chat
    cid = str(conversation.id)
    alice = Socket(one, alice_token)
    ready = alice.next("ready")
    assert ready["participants"] == {cid: _participant(conversation, "alice")}
    bob = Socket(two, bob_token)
    assert _participant(conversation, "alice") in bob.next("ready")["online"]
    # Alice (process 1) sees Bob (process 2) come online.
    online = alice.next("presence", participant_id=_participant(conversation, "bob"))
    assert online["status"] == "online" and online["recipient_id"] == "bob"

    bob.send({"type": "typing", "conversation_id": cid})
    typing = alice.next("typing")
    assert typing["participant_id"] == _participant(conversation, "bob") and typing["expires_in_ms"] == 5000

    # A message posted through the REST API (process 2's HTTP side) reaches Alice on process 1.
    posted = httpx.post(f"{two}/api/v1/conversations/{cid}/messages", json={"body": "hi *Alice*"},
                        headers={"Authorization": f"Inbox {bob_token}"}, timeout=10)
    assert posted.status_code == 201, posted.text
    created = alice.next("message.created")
    assert created["message"]["body_html"] == "<p>hi <em>Alice</em></p>"
    assert created["message"]["sender"]["recipient_id"] == "bob"
    # Alice's client acks: Bob sees the delivered receipt, then the read receipt.
    alice.send({"type": "ack", "conversation_id": cid, "message_ids": [created["message"]["id"]]})
    delivered = bob.next("receipt", kind="delivered")
    assert delivered["message_ids"] == [created["message"]["id"]]
    assert Receipt.objects.get(message_id=created["message"]["id"]).delivered_at is not None
    alice.send({"type": "read", "conversation_id": cid, "index": created["message"]["index"]})
    read = bob.next("receipt", kind="read")
    assert read["participant_id"] == _participant(conversation, "alice") and read["index"] == 1

    # Alice answers on process 1; Bob on process 2 gets it.
    httpx.post(f"{one}/api/v1/conversations/{cid}/messages", json={"body": "hello Bob"},
               headers={"Authorization": f"Inbox {alice_token}"}, timeout=10)
    hello = bob.next("message.created")["message"]
    assert hello["body"] == "hello Bob"
    # Edits and deletes travel the same way; a deleted message arrives as a tombstone.
    auth = {"Authorization": f"Inbox {alice_token}"}
    httpx.put(f"{one}/api/v1/conversations/messages/{hello['id']}", json={"body": "hello, Bob"}, headers=auth,
              timeout=10)
    assert bob.next("message.edited")["message"]["body"] == "hello, Bob"
    httpx.delete(f"{one}/api/v1/conversations/messages/{hello['id']}", headers=auth, timeout=10)
    tomb = bob.next("message.deleted")["message"]
    assert tomb["deleted"] and tomb["body"] == "" and tomb["body_html"] == "" and tomb["id"] == hello["id"]

    # Two tabs: Bob opens a second socket (process 1), closes the first: still online; closes both: offline.
    bob_tab2 = Socket(one, bob_token)
    bob_tab2.next("ready")
    bob.close()
    bob_tab2.send({"type": "ping"})
    bob_tab2.next("pong")
    assert presence.online([str(Participant.objects.get(pk=_participant(conversation, "bob")).recipient_id)])
    bob_tab2.close()
    offline = alice.next("presence", participant_id=_participant(conversation, "bob"), status="offline")
    assert offline["last_seen_at"]
    assert Participant.objects.get(pk=_participant(conversation, "bob")).last_seen_at is not None
    # Only the last close announced offline (the first close did not).
    statuses = [e["status"] for e in alice.seen if e.get("type") == "presence"
                and e["participant_id"] == _participant(conversation, "bob")]
    assert statuses == ["online", "offline"]
    alice.close()


def test_typing_is_throttled(two_processes, chat):
    one, two = two_processes
    conversation, alice_token, bob_token = chat
    cid = str(conversation.id)
    alice, bob = Socket(one, alice_token), Socket(two, bob_token)
    alice.next("ready"), bob.next("ready")
    for _ in range(5):
        bob.send({"type": "typing", "conversation_id": cid})
    bob.send({"type": "ping"})
    bob.next("pong")
    alice.next("typing")
    alice.send({"type": "ping"})
    alice.next("pong", timeout=5)
    assert sum(1 for e in alice.seen if e.get("type") == "typing") == 1
    alice.close(), bob.close()


def test_a_killed_process_does_not_leave_users_online_for_ever(tenant, chat):
    """Connections expire in Redis; the sweep announces them offline once (what a dead process cannot do)."""
    conversation, _, _ = chat
    bob = Recipient.objects.get(external_id="bob")
    assert presence.connect(recipient_id=str(bob.pk), conn_id="c1", ttl=0.2)
    assert not presence.connect(recipient_id=str(bob.pk), conn_id="c2", ttl=0.2)  # second tab: already online
    assert presence.online([str(bob.pk)])
    import time
    time.sleep(0.3)
    assert not presence.online([str(bob.pk)])
    assert realtime.sweep_once() == [str(bob.pk)]
    assert realtime.sweep_once() == []  # announced once
    assert Participant.objects.get(conversation=conversation, recipient=bob).last_seen_at is not None


def test_forged_and_expired_tokens_close_with_4401(two_processes, chat, settings):
    one, _ = two_processes
    sock = Socket(one, "forged")
    err = sock.next("error")
    assert err["code"] == "COMMS_UNAUTHENTICATED"
    with pytest.raises(ConnectionClosed) as closed:
        sock.ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4401
    # The first-frame form, with a token signed for another purpose (a forged salt).
    from django.core import signing
    sock = Socket(one)
    sock.send({"type": "auth", "token": signing.dumps({"t": "x", "r": "y"}, salt="other")})
    assert sock.next("error")["code"] == "COMMS_UNAUTHENTICATED"
    with pytest.raises(ConnectionClosed) as closed:
        sock.ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4401


def test_expired_token_and_auth_timeout(make_asgi_server, chat):
    conversation, alice_token, _ = chat
    url, _ = make_asgi_server(COMMS_INBOX_TOKEN_SECONDS="1", COMMS_WS_AUTH_SECONDS="1")
    import time
    time.sleep(2.1)
    sock = Socket(url, alice_token)
    assert "expired" in sock.next("error")["message"]
    with pytest.raises(ConnectionClosed) as closed:
        sock.ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4401
    silent = Socket(url)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            silent.ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4408


def test_foreign_origin_is_refused_and_bad_frames_are_typed(two_processes, chat):
    one, _ = two_processes
    conversation, alice_token, _ = chat
    with pytest.raises(InvalidStatus) as refused:
        Socket(one, alice_token, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    sock = Socket(one, alice_token, origin="http://127.0.0.1:1234")
    sock.next("ready")
    sock.ws.send("{not json")
    assert sock.next("error")["code"] == "COMMS_INVALID_JSON"
    sock.send({"type": "typing", "conversation_id": "00000000-0000-0000-0000-000000000000"})
    assert sock.next("error")["code"] == "COMMS_CONVERSATION_NOT_FOUND"
    sock.send({"type": "read", "conversation_id": str(conversation.id), "index": "x"})
    assert sock.next("error")["code"] == "COMMS_VALIDATION_ERROR"
    sock.send({"type": "nope"})
    assert sock.next("error")["code"] == "COMMS_VALIDATION_ERROR"
    sock.ws.send("x" * 20000)
    assert sock.next("error")["code"] == "COMMS_VALIDATION_ERROR"
    sock.send({"type": "ping"})
    assert sock.next("pong")  # still connected after all of it
    sock.close()
