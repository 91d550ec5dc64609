"""The live inbox stream, over a real ASGI server (uvicorn), fed by a real delivery."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from delivery.services import drain_all

pytestmark = pytest.mark.django_db(transaction=True)


def test_new_items_arrive_on_the_stream(asgi_server, admin_api):
    admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json")
    token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "u-1"}, format="json").json()["token"]
    events: list[dict] = []
    connected = threading.Event()

    def listen():
        with httpx.stream("GET", f"{asgi_server}/api/v1/inbox/stream", params={"token": token}, timeout=20) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    time.sleep(0.3)  # subscribed
    admin_api.post("/api/v1/messages", {"channel": "in_app", "recipient_id": "u-1", "subject": "Live!",
                                        "body": "now"}, format="json")
    drain_all()
    listener.join(10)
    assert [e["title"] for e in events] == ["Live!"]
    # One date format on the stream and in REST (issue 13 item 11): ISO 8601 with 'Z', as the API renders.
    httpx_headers = {"Authorization": f"Inbox {token}"}
    rest = httpx.get(f"{asgi_server}/api/v1/inbox", headers=httpx_headers, timeout=10).json()["results"][0]
    assert rest["id"] == events[0]["id"]
    assert events[0]["created_at"] == rest["created_at"] and rest["created_at"].endswith("Z")
    assert "T" in events[0]["created_at"] and "+00:00" not in events[0]["created_at"]


def test_stream_refuses_without_a_valid_token(asgi_server):
    response = httpx.get(f"{asgi_server}/api/v1/inbox/stream", params={"token": "forged"}, timeout=5)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_UNAUTHENTICATED"


def test_guessing_tokens_on_the_stream_is_locked_out_and_logged(make_asgi_server, admin_api):
    """The stream shares the inbox API's lockout: forged tokens count per client address, past the limit
    even a good token from that address gets 429 + Retry-After, other addresses are unaffected, and the
    lockout is logged once on comms.security (in the uvicorn process's log)."""
    url, log = make_asgi_server(COMMS_AUTH_FAILURE_LIMIT="3", LOG_LEVEL="WARNING")
    admin_api.put("/api/v1/recipients/u-2", {"email": "u2@example.com"}, format="json")
    token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "u-2"}, format="json").json()["token"]
    stream = f"{url}/api/v1/inbox/stream"
    guesser = {"X-Forwarded-For": "198.51.100.77"}  # uvicorn trusts X-Forwarded-For from loopback
    codes = [httpx.get(stream, params={"token": f"forged{i}"}, headers=guesser, timeout=5).status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]
    refused = httpx.get(stream, params={"token": token}, headers=guesser, timeout=5)
    assert refused.status_code == 429 and refused.json()["code"] == "COMMS_RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    refused = httpx.get(stream, headers={**guesser, "Authorization": f"Inbox {token}"}, timeout=5)
    assert refused.status_code == 429
    with httpx.stream("GET", stream, params={"token": token}, headers={"X-Forwarded-For": "198.51.100.78"},
                      timeout=10) as other:
        assert other.status_code == 200 and other.headers["content-type"].startswith("text/event-stream")
    lockouts = [line for line in log.read_text().splitlines() if "lockout" in line]
    assert len(lockouts) == 1 and "198.51.100.77" in lockouts[0] and "inbox stream token" in lockouts[0]
    assert token not in log.read_text()
