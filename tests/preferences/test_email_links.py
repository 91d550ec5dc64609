"""Non-critical e-mail shows its unsubscribe and preference-center links in the body (not only in the
List-Unsubscribe header): a footer, or where the template puts {{unsubscribe_url}} / {{preferences_url}}.
Real sends into the SMTP sink; the links are followed with the test client."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from comms.services import recipient_upsert
from delivery.services import drain_all
from preferences.headers import CENTER_PLACEHOLDER, TOKEN_PLACEHOLDER
from preferences.models import UserPreference
from templates_app import services as templates

pytestmark = pytest.mark.django_db

URL = re.compile(r"https?://[^\s\"<>()]+/([up])/([^\s\"<>()]+)")


def parts(mail) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode().replace("\r\n", "\n")
            for p in mail.walk() if not p.is_multipart()}


def links(text: str) -> list[tuple[str, str]]:
    return URL.findall(text)


def send(api, sink, **fields):
    body = {"channel": "email", "subject": "News", "body": "Our news", "body_html": "<p>Our news</p>", **fields}
    response = api.post("/api/v1/messages", body, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    [mail] = sink.by_comms_id()[response.json()["id"]]
    return mail


@pytest.fixture
def ana(tenant):
    return recipient_upsert(tenant=tenant, external_id="ana", data={"email": "ana@example.com", "locale": "en-US"})[0]


def test_marketing_mail_shows_the_links_and_they_lead_to_the_pages(api, smtp_sink, client, ana):
    mail = send(api, smtp_sink, recipient_id="ana", category="marketing")
    header_token = re.sub(r"\s+", "", mail["List-Unsubscribe"]).strip("<>").rsplit("/u/", 1)[1]
    text, html = parts(mail)["text/plain"], parts(mail)["text/html"]
    assert text.startswith("Our news\n\n-- \n") and 'class="comms-footer"' in html
    for part in (text, html):
        found = dict(links(part))
        assert found["u"] == header_token  # the same signed token as the List-Unsubscribe header
        assert set(found) == {"u", "p"}
    assert TOKEN_PLACEHOLDER not in mail.as_string() and CENTER_PLACEHOLDER not in mail.as_string()

    page = client.get(f"/u/{header_token}")  # a person clicks "Unsubscribe" in the body
    assert page.status_code == 200 and b"Marketing" in page.content
    assert not UserPreference.objects.filter(recipient=ana).exists()  # a GET changes nothing
    done = client.post(f"/u/{header_token}")
    assert done.status_code == 200
    assert UserPreference.objects.get(recipient=ana, category="marketing", channel="email").enabled is False
    center = client.get(f"/p/{dict(links(text))['p']}")  # ... or "Manage all preferences"
    assert center.status_code == 200 and b"Notification preferences" in center.content


def test_security_mail_has_no_footer_and_no_header(api, smtp_sink, ana):
    mail = send(api, smtp_sink, recipient_id="ana", category="security")
    assert mail["List-Unsubscribe"] is None
    assert parts(mail)["text/plain"].strip() == "Our news" and "comms-footer" not in parts(mail)["text/html"]
    assert not links(mail.as_string())


def test_bulk_rows_get_their_own_links_and_a_bare_address_no_preference_center(api, smtp_sink, tenant, ana):
    recipient_upsert(tenant=tenant, external_id="ben", data={"email": "ben@example.com", "locale": "es-ES"})
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "subject": "News", "body": "Our news", "body_html": "<p>Our news</p>",
        "category": "marketing",
        "recipients": [{"recipient_id": "ana"}, {"recipient_id": "ben"}, {"to": "cy@example.com"}]}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    by_to = {m["To"]: m for m in smtp_sink.messages}
    texts = {to: parts(m)["text/plain"] for to, m in by_to.items()}
    tokens = {to: dict(links(text)) for to, text in texts.items()}
    assert len({t["u"] for t in tokens.values()}) == 3  # one per row, substituted into the shared MIME
    assert set(tokens["ana@example.com"]) == set(tokens["ben@example.com"]) == {"u", "p"}
    assert set(tokens["cy@example.com"]) == {"u"}  # no directory entry, so no preference center to link
    assert "Darse de baja:" in texts["ben@example.com"] and "Unsubscribe:" in texts["ana@example.com"]
    for mail in by_to.values():
        wire = mail.as_string()
        assert TOKEN_PLACEHOLDER not in wire and CENTER_PLACEHOLDER not in wire
        assert re.sub(r"\s+", "", mail["List-Unsubscribe"]).strip("<>").endswith(dict(links(parts(mail)["text/plain"]))["u"])


def _live_template(tenant, body_html: str):
    user = get_user_model().objects.create_user("ed", "ed@example.com", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="approve_template"))
    user = get_user_model().objects.get(pk=user.pk)
    template = templates.template_create(tenant=tenant, actor=user, user=user, data={
        "template_key": "news", "name": "News", "category": "marketing", "channels": ["email"],
        "default_locale": "en-US", "locales": [{"locale": "en-US", "subject": "News", "body_html": body_html}]})
    version = template.versions.get()
    templates.version_submit(version=version, actor=user, user=user)
    other = get_user_model().objects.create_user("ap", "ap@example.com", "pw", is_staff=True)
    other.user_permissions.add(Permission.objects.get(codename="approve_template"))
    templates.version_approve(version=version, user=get_user_model().objects.get(pk=other.pk))
    return template


def test_a_template_that_places_the_links_itself_gets_no_footer(api, smtp_sink, settings, tenant, ana):
    settings.COMMS_ASSET_CHECK = False
    _live_template(tenant, '<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text>'
                           '<mj-text><a href="{{unsubscribe_url}}">Leave this list</a> or '
                           '<a href="{{preferences_url}}">choose what you get</a></mj-text>'
                           '</mj-column></mj-section></mj-body></mjml>')
    response = api.post("/api/v1/messages", {"channel": "email", "recipient_id": "ana", "template": "news",
                                             "category": "marketing"}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    [mail] = smtp_sink.messages
    html, text = parts(mail)["text/html"], parts(mail)["text/plain"]
    assert "Leave this list" in html and "comms-footer" not in html
    found = dict(links(html))
    assert set(found) == {"u", "p"}
    assert re.sub(r"\s+", "", mail["List-Unsubscribe"]).endswith(f"/u/{found['u']}>")
    assert "Unsubscribe:" not in text and dict(links(text)) == found  # the text part came from the HTML
    assert TOKEN_PLACEHOLDER not in mail.as_string() and CENTER_PLACEHOLDER not in mail.as_string()


def test_links_in_a_quoted_printable_part_are_personalised_per_row(api, smtp_sink, tenant, ana):
    """HTML with a line over 998 bytes goes out quoted-printable, whose soft breaks split placeholders: the
    shared rendering substitutes in the decoded text and encodes each row again."""
    recipient_upsert(tenant=tenant, external_id="ben", data={"email": "ben@example.com"})
    long_html = "<html><body><p>" + "Big news this week. " * 80 + "</p></body></html>"
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "subject": "News", "body": "Our news", "body_html": long_html, "category": "marketing",
        "recipients": [{"recipient_id": "ana"}, {"recipient_id": "ben"}]}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    assert len(smtp_sink.messages) == 2
    seen = set()
    for mail in smtp_sink.messages:
        [html_part] = [p for p in mail.walk() if p.get_content_type() == "text/html"]
        assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
        assert all(len(line) <= 76 for line in html_part.get_payload().splitlines())
        html = parts(mail)["text/html"]
        assert "Big news this week." in html and 'class="comms-footer"' in html
        found = dict(links(html))
        assert set(found) == {"u", "p"} and found == dict(links(parts(mail)["text/plain"]))
        assert re.sub(r"\s+", "", mail["List-Unsubscribe"]).endswith(f"/u/{found['u']}>")
        assert TOKEN_PLACEHOLDER not in html and CENTER_PLACEHOLDER not in html  # decoded: no split leftovers
        seen.add(found["u"])
    assert len(seen) == 2
