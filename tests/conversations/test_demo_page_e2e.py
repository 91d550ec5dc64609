"""The demo chat page in two headless Chromium pages, one per participant, against a real ASGI process:
the typing indicator appears on the other page, the message arrives, and the read receipt turns."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from comms.conversations.services import ParticipantSpec, conversation_create
from comms.models import Recipient
from delivery.inbox import inbox_token
from tests.browser import CHROMIUM
from tests.conftest import ROOT, _uvicorn, serving, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_server(tmp_path):
    """uvicorn with collected static files (WhiteNoise serves STATIC_ROOT, as after `make run`'s bootstrap)."""
    from django.conf import settings

    # Its own var dir for the static files, the test's SECRET_KEY so the tokens it signs verify there.
    env = {"COMMS_VAR_DIR": str(tmp_path), "SECRET_KEY": settings.SECRET_KEY}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                   env={**worker_env(), **env}, check=True)
    with serving(_uvicorn, "uvicorn", extra_env=env) as url:
        yield url


@contextlib.contextmanager
def two_pages(width: int):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            pages = [browser.new_context(viewport={"width": width, "height": 800}).new_page() for _ in range(2)]
            yield pages
        finally:
            browser.close()


def _shots():
    from pathlib import Path
    path = Path("/tmp/shots-i17-conv")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("width", [1280, 360])
def test_two_participants_chat_live(chat_server, tenant, width):
    alice = Recipient.objects.create(tenant=tenant, external_id="alice")
    bob = Recipient.objects.create(tenant=tenant, external_id="bob")
    conversation_create(tenant=tenant, kind="direct", subject="Order #1234 delivery", participants=[
        ParticipantSpec(recipient=alice, display_name="Alice"), ParticipantSpec(recipient=bob, display_name="Bob")])
    errors: list[str] = []
    with two_pages(width) as (page_a, page_b):
        for page in (page_a, page_b):
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
        page_a.goto(f"{chat_server}/conversations/demo#token={inbox_token(recipient=alice)}")
        page_b.goto(f"{chat_server}/conversations/demo#token={inbox_token(recipient=bob)}")
        for page in (page_a, page_b):
            page.wait_for_selector("#status.online", timeout=15000)
        # Bob comes online on Alice's page.
        page_a.wait_for_selector("#participants li.online >> text=Bob", timeout=10000)

        page_b.fill("#body", "Hi Alice, **on my way**")
        page_b.type("#body", "!")  # an input event: typing
        page_a.wait_for_selector("#typing:not([hidden])", timeout=10000)
        assert page_a.inner_text("#typing") == "Bob is typing…"
        page_a.screenshot(path=str(_shots() / f"demo-typing-{width}.png"), full_page=True)

        page_b.click("#send")
        page_a.wait_for_selector(".msg >> text=on my way", timeout=10000)
        assert page_a.inner_html(".msg .body") == "<p>Hi Alice, <strong>on my way</strong>!</p>"
        # Alice's page is visible: it acks and reads; Bob's receipt turns to "read".
        page_b.wait_for_selector('.msg.mine .receipt[data-state="read"]', timeout=10000)
        assert page_a.is_hidden("#typing")  # the message replaced the indicator

        page_a.fill("#body", "Great, see you soon")
        page_a.press("#body", "Enter")
        page_b.wait_for_selector(".msg:not(.mine) >> text=see you soon", timeout=10000)
        page_a.wait_for_selector('.msg.mine .receipt[data-state="read"]', timeout=10000)
        page_a.screenshot(path=str(_shots() / f"demo-a-{width}.png"), full_page=True)
        page_b.screenshot(path=str(_shots() / f"demo-b-{width}.png"), full_page=True)
        # Nothing overflows horizontally at this width.
        assert page_a.evaluate("document.documentElement.scrollWidth") <= width
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert not errors, errors
