"""In-app content follows email's policy: variables HTML-escaped, links checked (unsafe → ``#``).

Before, an in-app template put ``<b><script>alert(1)</script></b>`` and ``javascript:alert(1)`` into
the inbox item as given, for the recipient's inbox UI (often a web view) to run.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from comms.links import safe_link, safe_url
from delivery.models import InAppNotification
from delivery.services import drain_all
from templates_app import services

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
CONTENT = {"title": "Order {{id}} for {{name}}", "body": "<b>{{name}}</b>", "link": "{{url}}",
           "data": {"note": "<i>{{name}}</i>", "actions": [{"label": "Open {{name}}", "url": "{{url}}"}],
                    "image_url": "https://cdn.example.com/{{id}}.png"}}


@pytest.fixture
def in_app_template(tenant, editor, approver):
    data = {"template_key": "shipped", "name": "Shipped", "category": "transactional", "channels": ["in_app"],
            "variables_schema": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                                                  "url": {"type": "string"}}},
            "sample_variables": {"id": "A-1", "name": "Ada", "url": "https://shop.example.com/o/A-1"},
            "locales": [{"locale": "en-US", "in_app_content": CONTENT}]}
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data=data)
    version = template.versions.get()
    services.version_submit(version=version, actor=editor, user=editor)
    services.version_approve(version=version, user=approver)
    return template


@pytest.fixture
def inbox(admin_api):
    admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json")
    token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "u-1"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Inbox {token}")
    return client


def _send(api, **variables) -> None:
    response = api.post("/api/v1/messages", {"channel": "in_app", "recipient_id": "u-1", "template": "shipped",
                                             "variables": {"id": "A-1", **variables}}, format="json")
    assert response.status_code == 202, response.content
    drain_all()


def test_variables_are_escaped_and_a_script_link_becomes_a_hash(api, in_app_template, inbox):
    _send(api, name=SCRIPT, url="javascript:alert(1)")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    item = InAppNotification.objects.get()
    assert item.title == f"Order A-1 for {escaped}" and item.body == f"<b>{escaped}</b>"
    assert item.deep_link == "#"
    [shown] = inbox.get("/api/v1/inbox").json()["results"]
    assert shown["deep_link"] == "#" and shown["body"] == f"<b>{escaped}</b>"
    data = shown["data"]
    assert data["link"] == "#" and data["data"]["actions"] == [{"label": f"Open {escaped}", "url": "#"}]
    assert data["data"]["note"] == f"<i>{escaped}</i>"
    assert data["data"]["image_url"] == "https://cdn.example.com/A-1.png"
    assert SCRIPT not in str(shown) and "javascript:" not in str(shown)


@pytest.mark.parametrize("url", ["app://orders/1", "/orders/1?tab=items&x=1", "https://shop.example.com/o?a=1&b=2",
                                 "mailto:help@example.com"])
def test_app_links_and_web_links_pass_unescaped(api, in_app_template, inbox, url):
    _send(api, name="Ada & Bo", url=url)
    item = InAppNotification.objects.get()
    assert item.deep_link == url and item.data["data"]["actions"][0]["url"] == url
    assert item.body == "<b>Ada &amp; Bo</b>"


def test_a_callers_deep_link_is_checked_too(admin_api, inbox):
    for link in ("JaVa\tScRiPt:alert(1)", "app://orders/1"):
        response = admin_api.post("/api/v1/messages", {"channel": "in_app", "recipient_id": "u-1", "subject": "S",
                                                       "body": "B", "metadata": {"deep_link": link}}, format="json")
        assert response.status_code == 202, response.content
    drain_all()
    assert sorted(InAppNotification.objects.values_list("deep_link", flat=True)) == ["#", "app://orders/1"]


def test_preview_shows_the_same_policy(admin_api, in_app_template):
    response = admin_api.post("/api/v1/templates/shipped/preview",
                              {"variables": {"id": "A-1", "name": SCRIPT, "url": "data:text/html,x"}}, format="json")
    in_app = response.json()["channels"]["in_app"]
    assert in_app["content"]["link"] == "#" and SCRIPT not in str(in_app["content"])
    assert any(p.startswith("unsafe URL removed") for p in in_app["problems"])


def test_unescaped_output_in_in_app_content_needs_a_trusted_template(admin_api):
    response = admin_api.post("/api/v1/templates", {
        "template_key": "raw", "name": "Raw", "channels": ["in_app"],
        "locales": [{"locale": "en-US", "in_app_content": {"title": "T", "body": "{{{html}}}"}}]}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "COMMS_TEMPLATE_INVALID"
    assert response.json()["details"]["part"] == "in_app_content.body"


@pytest.mark.parametrize(("value", "email", "app"), [
    ("https://x.example/a", "https://x.example/a", "https://x.example/a"),
    ("javascript:alert(1)", "#", "#"),
    (" java\nscript:alert(1)", "#", "#"),
    ("&#106;avascript:alert(1)", "#", "#"),
    ("data:text/html;base64,PHNjcmlwdD4=", "#", "#"),
    ("file:///etc/passwd", "#", "#"),
    ("vbscript:x", "#", "#"),
    ("myapp://orders/1", "#", "myapp://orders/1"),
    ("/orders/1", "#", "/orders/1"),
    ("orders/1:2", "#", "orders/1:2"),
    ("#top", "#top", "#top"),
])
def test_one_link_policy(value, email, app):
    assert (safe_url(value), safe_link(value)) == (email, app)
