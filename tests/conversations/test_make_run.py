"""`make run` serves the conversations WebSocket from its ASGI process (web-live) and prints the demo
chat links; the printed token opens the socket there."""

from __future__ import annotations

import re

import httpx
import pytest

from comms.devserver.embedded import free_port
from tests.comms.test_comms_up import ComposedSystem
from tests.conftest import wait_for
from tests.conversations.wsclient import Socket


@pytest.mark.slow
def test_banner_prints_demo_chat_links_served_with_websocket(tmp_path):
    web_port = free_port()
    system = ComposedSystem(tmp_path / "var", web_port, free_port())
    try:
        wait_for(lambda: "comms is up" in system.text, timeout=180, interval=0.2, message="the banner")
        found = re.search(r"Ada\s+(http://127\.0\.0\.1:(\d+)/conversations/demo)#token=(\S+)", system.text)
        assert found, system.text[-2000:]
        page, live_port, token = found.group(1), int(found.group(2)), found.group(3)
        assert live_port == web_port + 1
        assert f"ws://127.0.0.1:{web_port + 1}/ws/conversations" in system.text
        wait_for(lambda: _ok(page), timeout=60, message="web-live")
        html = httpx.get(page, timeout=10)
        assert "conversations/chat.js" in html.text and "<script>" not in html.text
        assert httpx.get(re.search(r'src="([^"]+chat\.js)"', html.text).group(1).join(
            [f"http://127.0.0.1:{live_port}", ""]), timeout=10).status_code == 200
        sock = Socket(f"http://127.0.0.1:{live_port}", token)
        ready = sock.next("ready", timeout=20)
        assert ready["recipient_id"] == "demo-ada" and len(ready["participants"]) == 1
        sock.close()
    finally:
        assert system.stop() == 0, system.text[-3000:]


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
