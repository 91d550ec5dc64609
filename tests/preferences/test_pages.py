"""End-user pages through Django's test client: one-click POST vs GET, tampered/expired tokens,
CSRF on the preference center, languages, rate limit."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client

from preferences.models import ConsentRecord, UserPreference
from preferences.services import is_suppressed, preference_center_token, unsubscribe_token
from preferences.tokens import UNSUBSCRIBE_SALT

pytestmark = pytest.mark.django_db


def test_get_shows_a_confirmation_and_changes_nothing(person):
    token = unsubscribe_token(recipient=person, category="booking")
    response = Client().get(f"/u/{token}")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="es"' in html and "Darse de baja" in html and "Reservas" in html  # person.locale is es-ES
    assert not UserPreference.objects.filter(recipient=person).exists()
    assert not ConsentRecord.objects.filter(recipient=person).exists()


def test_one_click_post_unsubscribes_without_cookie_or_csrf(person):
    token = unsubscribe_token(recipient=person, category="booking")
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded", HTTP_USER_AGENT="Gmail one-click")
    assert response.status_code == 200
    pref = UserPreference.objects.get(recipient=person, channel="email", category="booking")
    assert pref.enabled is False
    consent = ConsentRecord.objects.get(recipient=person)
    assert (consent.action, consent.source, consent.category, consent.user_agent) == (
        "withdrawn", "one_click", "booking", "Gmail one-click")
    assert UserPreference.objects.filter(recipient=person, enabled=False).count() == 1  # only that category


def test_one_click_for_a_bare_address_suppresses_it(api, tenant, smtp_sink):
    from delivery.models import Message
    from delivery.services import drain_all
    from preferences.headers import message_unsubscribe_token

    response = api.post("/api/v1/messages", {"channel": "email", "to": "dora@example.com", "subject": "s",
                                             "body": "b", "category": "marketing"}, format="json")
    drain_all()
    token = message_unsubscribe_token(Message.objects.get(id=response.json()["id"]))
    assert Client().post(f"/u/{token}", {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert is_suppressed(tenant=tenant, channel="email", address="dora@example.com")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: "x" + t,  # payload changed
    lambda t: "",  # nothing
])
def test_tampered_tokens_are_refused(person, mangle):
    token = mangle(unsubscribe_token(recipient=person, category="booking"))
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/u/{token}" if token else "/u/x")
        assert response.status_code == 400
    assert not UserPreference.objects.filter(recipient=person).exists()


def test_a_token_of_another_purpose_or_expired_is_refused(person, settings):
    center = preference_center_token(recipient=person)
    assert Client().post(f"/u/{center}", {"List-Unsubscribe": "One-Click"}).status_code == 400
    # Signed 200 days ago (the default lifetime is 180 days).
    import time
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=time.time() - 200 * 86400):
        old = signing.dumps({"t": str(person.tenant_id), "r": str(person.pk), "c": "booking"}, salt=UNSUBSCRIBE_SALT,
                            compress=True)
    response = Client().get(f"/u/{old}?lang=en")
    assert response.status_code == 400 and b"expired" in response.content


def test_preference_center_form_is_csrf_protected(person):
    token = preference_center_token(recipient=person)
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/p/{token}", {"action": "save"}).status_code == 403
    page = client.get(f"/p/{token}?lang=fr")
    assert page.status_code == 200 and "Préférences de notification" in page.content.decode()
    csrf = client.cookies["csrftoken"].value
    response = client.post(f"/p/{token}?lang=fr", {"csrfmiddlewaretoken": csrf, "action": "save",
                                                   "pref:booking:email": "on", "pref:messages:push": "on",
                                                   "freq:messages": "daily_digest", "quiet_enabled": "on",
                                                   "quiet_start": "22:00", "quiet_end": "07:30",
                                                   "timezone": "Europe/Paris"})
    assert response.status_code == 302 and "saved=saved" in response["Location"]
    prefs = {(p.channel, p.category): (p.enabled, p.frequency) for p in UserPreference.objects.filter(recipient=person)}
    assert prefs[("email", "booking")] == (True, "realtime")
    assert prefs[("email", "reviews")][0] is False  # unchecked box: off
    assert prefs[("push", "messages")] == (True, "daily_digest")
    quiet = person.quiet_hours.get(category="")
    assert (str(quiet.start), str(quiet.end), quiet.timezone) == ("22:00:00", "07:30:00", "Europe/Paris")


def test_preference_center_bad_input_is_reported_not_saved(person):
    token = preference_center_token(recipient=person)
    client = Client()
    client.get(f"/p/{token}")
    for bad, field in (({"quiet_start": "09:00", "quiet_end": "09:00"}, "quiet_end"),
                       ({"quiet_start": "9pm", "quiet_end": "08:00"}, "quiet_start"),
                       ({"quiet_start": "21:00", "quiet_end": "08:00", "timezone": "Mars/Base"}, "timezone")):
        response = client.post(f"/p/{token}?lang=en", {"action": "save", **bad})
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode() and f'id="{field}"' in response.content.decode()
    assert not UserPreference.objects.filter(recipient=person).exists()  # one transaction: nothing half-saved


def test_unsubscribe_from_all_marketing(person):
    token = preference_center_token(recipient=person)
    client = Client()
    client.get(f"/p/{token}")
    response = client.post(f"/p/{token}", {"action": "unsubscribe_all"})
    assert response.status_code == 302
    off = set(UserPreference.objects.filter(recipient=person, enabled=False).values_list("category", flat=True))
    assert off == {"promotions", "marketing"}


def test_public_pages_are_rate_limited(person, tenant, settings):
    from comms.services import recipient_upsert

    settings.COMMS_PUBLIC_RATE = "3/min"
    token = unsubscribe_token(recipient=person, category="booking")
    codes = [Client().get(f"/u/{token}").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]  # one link hammered
    guesses = [Client().get(f"/u/guess{i}").status_code for i in range(5)]
    assert guesses[:3] == [400, 400, 400] and guesses[3:] == [429, 429]  # token guessing from one IP
    # Many people's one-click POSTs from one mailbox-provider IP are not throttled together.
    others = [recipient_upsert(tenant=tenant, external_id=f"o{i}", data={"email": f"o{i}@example.com"})[0]
              for i in range(5)]
    posts = [Client().post(f"/u/{unsubscribe_token(recipient=o, category='booking')}",
                           {"List-Unsubscribe": "One-Click"}).status_code for o in others]
    assert posts == [200] * 5


def test_suppression_viewer_search_and_lift_with_consent(tenant, admin_client):
    from comms.models import AuditEntry
    from preferences.models import Suppression
    from preferences.services import suppression_add

    suppression_add(tenant=tenant, channel="email", address="fay@example.com", reason="unsubscribe", source="link")
    suppression_add(tenant=tenant, channel="email", address="gus@example.com", reason="hard_bounce", source="smtp")
    page = admin_client.get("/admin/preferences/suppression/?q=FAY@example.com")
    html = page.content.decode()
    assert page.status_code == 200 and "fa…@example.com" in html and "gu…@example.com" not in html
    ids = [str(s.pk) for s in Suppression.objects.all()]
    ask = admin_client.post("/admin/preferences/suppression/", {"action": "lift_with_consent", "_selected_action": ids})
    assert ask.status_code == 200 and "documented" in ask.content.decode()  # consent text asked first
    assert Suppression.objects.count() == 2
    admin_client.post("/admin/preferences/suppression/", {"action": "lift_with_consent", "_selected_action": ids,
                                                          "consent_text": "Phone call 2026-11-20, ticket 4411"})
    assert list(Suppression.objects.values_list("reason", flat=True)) == ["hard_bounce"]  # a bounce stays
    assert ConsentRecord.objects.get().consent_text == "Phone call 2026-11-20, ticket 4411"
    assert AuditEntry.objects.filter(action="suppression.lift").count() == 1
