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


def test_stream_refuses_without_a_valid_token(asgi_server):
    response = httpx.get(f"{asgi_server}/api/v1/inbox/stream", params={"token": "forged"}, timeout=5)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_UNAUTHENTICATED"
