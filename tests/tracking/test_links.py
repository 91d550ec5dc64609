"""Click and open tracking end to end: rewritten at send time, redirected only to the stored URL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from tracking import links
from tracking.models import MessageEvent, TrackingMiss

pytestmark = pytest.mark.django_db

HTML = ('<html><head><title>t</title></head><body><p>Hello</p>'
        '<a href="https://shop.example.com/orders/1?x=1&amp;y=2">Order</a> '
        '<a href="mailto:help@shop.example.com">Mail us</a> '
        '<a data-notrack href="https://shop.example.com/account">Account</a> '
        '<a href="https://shop.example.com/promo">Promo</a></body></html>')


def _html_of(sink, message_id: str) -> str:
    [mail] = sink.by_comms_id()[message_id]
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


def _send(api, sink, **fields) -> tuple[str, str]:
    body = {"channel": "email", "to": "ada@example.com", "subject": "Your order", "body": "See it online",
            "body_html": HTML, **fields}
    response = api.post("/api/v1/messages", body, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    message_id = response.json()["id"]
    return message_id, _html_of(sink, message_id)


def _tracked(html: str) -> list[str]:
    return re.findall(r'href="https?://[^"]+/c/([^"]+)"', html)


def test_links_rewritten_and_click_redirects_to_the_stored_url(api, smtp_sink, client):
    message_id, html = _send(api, smtp_sink)
    tokens = _tracked(html)
    assert len(tokens) == 2  # order + promo; mailto and data-notrack stay as written
    assert 'href="mailto:help@shop.example.com"' in html and 'href="https://shop.example.com/account"' in html
    assert re.search(r'<img src="[^"]+/o/[^"]+\.gif"', html)
    response = client.get(f"/c/{tokens[0]}", HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                          "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                          REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/orders/1?x=1&y=2"  # transactional: no UTM
    assert response["Cache-Control"] == "no-store, private"
    click = MessageEvent.objects.get(event_type="clicked")
    assert (str(click.message_id), click.link_url, click.link_id) == (message_id, "https://shop.example.com/orders/1?x=1&y=2", "0")
    assert (click.device_type, click.client, click.ip_address) == ("desktop", "Chrome", "198.51.100.0")
    assert client.get(f"/c/{tokens[1]}")["Location"] == "https://shop.example.com/promo"


def test_open_pixel_records_one_unique_open(api, smtp_sink, client):
    message_id, html = _send(api, smtp_sink)
    pixel = re.search(r'/o/([^"]+)\.gif', html).group(1)
    for _ in range(3):
        response = client.get(f"/o/{pixel}.gif", HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like "
                              "Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    events = MessageEvent.objects.filter(event_type="opened")
    assert events.count() == 3 and {e.client for e in events} == {"Apple Mail"}
    from tracking.services import metrics_reconcile

    assert metrics_reconcile is not None


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # MAC changed
    lambda t: links.click_token(uuid.UUID(int=0), 0, "https://evil.example/"),  # unknown message
    lambda t: "//evil.com",
    lambda t: "%2F%2Fevil.com",
    lambda t: "\\\\evil.com",
    lambda t: "https:%2F%2Fuser@evil.com",
    lambda t: "not-a-token",
])
def test_tampered_tokens_are_refused_without_redirect(api, smtp_sink, client, mangle):
    _, html = _send(api, smtp_sink)
    token = _tracked(html)[0]
    response = client.get(f"/c/{mangle(token)}")
    assert response.status_code in (400, 404)
    assert "Location" not in response
    if response.status_code == 400:
        assert response.json()["code"] == "COMMS_TRACKING_TOKEN"
    assert not MessageEvent.objects.filter(event_type="clicked").exists()


def test_token_for_another_link_index_or_url_is_refused(api, smtp_sink, client):
    message_id, html = _send(api, smtp_sink)
    mid = uuid.UUID(message_id)
    # a MAC made for some other URL (what an attacker would need to redirect elsewhere) does not verify
    forged = links.click_token(mid, 0, "https://evil.example/")
    assert client.get(f"/c/{forged}").status_code == 400
    # a valid MAC moved to another index does not verify either
    head, mac = _tracked(html)[0].split(".")
    other = links.click_token(mid, 3, "x").split(".")[0]
    assert client.get(f"/c/{other}.{mac}").status_code == 400
    # the query string is never used as a destination
    response = client.get(f"/c/{_tracked(html)[0]}?url=//evil.com&next=https://evil.com")
    assert response["Location"] == "https://shop.example.com/orders/1?x=1&y=2"


@pytest.mark.parametrize("href", ["//evil.com/x", "https://shop.example.com\\@evil.com/", "https://user:pw@evil.com/",
                                  "javascript:alert(1)", "https:/\\evil.com"])
def test_unsafe_hrefs_in_content_are_never_tracked(api, smtp_sink, href):
    html = f'<html><body><a href="{href}">x</a></body></html>'
    _, out = _send(api, smtp_sink, body_html=html)
    assert not _tracked(out)
    assert not links.safe_destination(href)


def test_expired_token_still_redirects_and_logs_a_miss(api, smtp_sink, client, settings):
    message_id, html = _send(api, smtp_sink)
    Message.objects.filter(pk=message_id).update(sent_at=timezone.now() - timedelta(days=400),
                                                 created_at=timezone.now() - timedelta(days=400))
    response = client.get(f"/c/{_tracked(html)[0]}")
    assert response.status_code == 302 and response["Location"].startswith("https://shop.example.com/orders/1")
    miss = TrackingMiss.objects.get()
    assert (str(miss.message_id), miss.kind, miss.reason) == (message_id, "click", "expired")
    assert not MessageEvent.objects.filter(event_type="clicked").exists()


@pytest.mark.parametrize("category", ["security", "legal"])
def test_no_tracking_for_sensitive_categories(api, smtp_sink, category):
    _, html = _send(api, smtp_sink, category=category)
    assert not _tracked(html) and "/o/" not in html
    assert '<meta name="user-dnt" content="true">' in html


def test_no_tracking_for_do_not_track_recipients(api, smtp_sink, tenant):
    Recipient.objects.create(tenant=tenant, external_id="dnt-1", email="ada@example.com",
                             attributes={"do_not_track": True})
    _, html = _send(api, smtp_sink, to="", recipient_id="dnt-1")
    assert not _tracked(html) and "/o/" not in html


def test_utm_only_on_marketing(api, smtp_sink, client):
    _, html = _send(api, smtp_sink, category="marketing", metadata={"campaign_id": "spring-sale"})
    location = client.get(f"/c/{_tracked(html)[0]}")["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["utm_medium"] == ["email"] and query["utm_campaign"] == ["spring-sale"]
    assert query["x"] == ["1"] and "ada" not in location  # no personal data in UTM
    _, plain = _send(api, smtp_sink)
    assert "utm_" not in client.get(f"/c/{_tracked(plain)[0]}")["Location"]


def test_utm_on_marketing_even_without_tracking(api, smtp_sink, tenant):
    Recipient.objects.create(tenant=tenant, external_id="dnt-2", email="ada@example.com",
                             attributes={"do_not_track": True})
    _, html = _send(api, smtp_sink, to="", recipient_id="dnt-2", category="marketing")
    assert "utm_medium=email" in html and not _tracked(html)


def test_bulk_rows_are_tracked_from_their_shared_content(api, smtp_sink, client):
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "subject": "News", "body": "b", "body_html": HTML,
        "recipients": [{"to": f"user{i}@example.com"} for i in range(3)]}, format="json")
    assert response.status_code in (200, 201, 202), response.content
    drain_all()
    ids = [str(m) for m in Message.objects.values_list("id", flat=True)]
    tokens = [_tracked(_html_of(smtp_sink, i))[1] for i in ids]
    assert len(set(tokens)) == 3  # one token per message
    assert all(client.get(f"/c/{t}")["Location"] == "https://shop.example.com/promo" for t in tokens)
