"""Service API: preferences GET/PUT, subscriptions, consent export, erasure, import, suppressions."""

from __future__ import annotations

import pytest
from django.db import connection

from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from preferences.models import ConsentRecord
from preferences.services import is_suppressed

pytestmark = pytest.mark.django_db


def subject(mail) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(mail["Subject"])))


def test_get_and_put_preferences(admin_api, person):
    url = f"/api/v1/recipients/{person.external_id}/preferences"
    body = admin_api.get(url).json()
    cell = {(p["channel"], p["category"]): p for p in body["preferences"]}
    assert cell[("email", "promotions")]["enabled"] is False and cell[("push", "booking")]["enabled"] is True
    assert body["preference_center_url"].startswith("http") and "/p/" in body["preference_center_url"]
    response = admin_api.put(url, {
        "preferences": [{"category": "booking", "channel": "sms", "enabled": True},
                        {"category": "reviews", "channel": "email", "enabled": True, "frequency": "weekly_digest"}],
        "quiet_hours": [{"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}],
        "updated_by": "user", "ip": "203.0.113.5", "user_agent": "MyApp/1.0", "consent_text": "Settings screen",
    }, format="json")
    assert response.status_code == 200, response.content
    cell = {(p["channel"], p["category"]): p for p in response.json()["preferences"]}
    assert cell[("sms", "booking")]["enabled"] and cell[("email", "reviews")]["frequency"] == "weekly_digest"
    assert response.json()["quiet_hours"][0]["timezone"] == "Europe/Madrid"
    export = admin_api.get(f"/api/v1/recipients/{person.external_id}/consent").json()["results"]
    assert {(c["channel"], c["category"], c["action"], c["ip"]) for c in export} == {
        ("sms", "booking", "granted", "203.0.113.5"), ("email", "reviews", "granted", "203.0.113.5")}


@pytest.mark.parametrize("payload,code", [
    ({"preferences": [{"category": "gossip", "channel": "email", "enabled": False}]}, "COMMS_UNKNOWN_CATEGORY"),
    ({"preferences": [{"category": "booking", "channel": "fax", "enabled": False}]}, "COMMS_VALIDATION_ERROR"),
    ({"preferences": [{"category": "security", "channel": "email", "enabled": False}]}, "COMMS_VALIDATION_ERROR"),
    ({"quiet_hours": [{"start": "09:00", "end": "09:00"}]}, "COMMS_INVALID_QUIET_HOURS"),
    ({"quiet_hours": [{"timezone": "Moon/Base"}]}, "COMMS_INVALID_TIMEZONE"),
    ({"colour": "blue"}, "COMMS_UNKNOWN_FIELD"),
])
def test_bad_input_is_a_typed_error_and_changes_nothing(admin_api, person, payload, code):
    response = admin_api.put(f"/api/v1/recipients/{person.external_id}/preferences", payload, format="json")
    assert response.status_code == 400 and response.json()["code"] == code, response.content
    assert not person.preferences.exists() and not person.quiet_hours.exists()


def test_scopes_and_unknown_recipient(api, admin_api, person):
    assert api.put(f"/api/v1/recipients/{person.external_id}/preferences", {}, format="json").status_code == 403
    assert api.get(f"/api/v1/recipients/{person.external_id}/preferences").status_code == 200
    assert admin_api.get("/api/v1/recipients/nobody/preferences").json()["code"] == "COMMS_RECIPIENT_NOT_FOUND"


def test_double_opt_in_through_the_api_and_the_real_email(admin_api, person, smtp_sink):
    from django.test import Client

    response = admin_api.post(f"/api/v1/recipients/{person.external_id}/subscriptions",
                              {"list_id": "promotions", "source": "signup_form"}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    drain_all()
    [mail] = smtp_sink.messages
    assert subject(mail) == "Confirma tu suscripción a Promociones y novedades"  # the person's language (es-ES)
    body = mail.get_payload()[0].get_payload(decode=True).decode()
    link = next(word for word in body.split() if "/s/confirm/" in word)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client = Client()
    assert client.get(f"/{path}").status_code == 200  # a scanner's GET confirms nothing
    assert admin_api.get(f"/api/v1/recipients/{person.external_id}/subscriptions").json()["results"][0]["status"] == "pending"
    assert client.post(f"/{path}").status_code == 200
    [sub] = admin_api.get(f"/api/v1/recipients/{person.external_id}/subscriptions").json()["results"]
    assert sub["status"] == "subscribed" and sub["double_opt_in_confirmed"]
    assert ConsentRecord.objects.filter(recipient=person, source="double_opt_in", action="granted").exists()


def test_double_opt_in_reminder_then_expiry(person, smtp_sink, settings):
    import datetime as dt

    from django.utils import timezone

    from preferences.models import ChannelSubscription
    from preferences.services import double_opt_in_sweep, subscription_request

    sub = subscription_request(recipient=person, list_id="promotions", source="signup_form")
    now = timezone.now()
    assert double_opt_in_sweep(now=now) == {"reminded": 0, "expired": 0}
    assert double_opt_in_sweep(now=now + dt.timedelta(hours=49)) == {"reminded": 1, "expired": 0}
    assert double_opt_in_sweep(now=now + dt.timedelta(hours=50)) == {"reminded": 0, "expired": 0}  # once only
    drain_all()
    subjects = sorted(subject(m) for m in smtp_sink.messages)
    assert len(subjects) == 2 and any(s.startswith("Recordatorio") for s in subjects)
    assert double_opt_in_sweep(now=now + dt.timedelta(days=8))["expired"] == 1
    assert not ChannelSubscription.objects.filter(pk=sub.pk).exists()


def test_import_api_reports_bad_rows_and_atomic(admin_api, person):
    csv = "external_id,channel,category,enabled\nu-1,email,booking,false\nghost,email,booking,false\n"
    atomic = admin_api.post("/api/v1/preferences/import?atomic=true", csv, content_type="text/csv")
    assert atomic.status_code == 400 and atomic.json()["code"] == "COMMS_IMPORT_FAILED"
    assert atomic.json()["details"]["errors"] == [{"line": 3, "error": "unknown recipient 'ghost'"}]
    assert not person.preferences.exists()
    ok = admin_api.post("/api/v1/preferences/import", {"csv": csv}, format="json")
    assert ok.status_code == 200 and ok.json()["applied"] == 1 and ok.json()["bad_rows"] == 1


def test_suppression_api(admin_api):
    added = admin_api.post("/api/v1/suppressions", {"channel": "email", "address": "x@example.com",
                                                    "reason": "complaint"}, format="json")
    assert added.status_code == 201 and "x@example.com" not in added.content.decode()
    assert admin_api.get("/api/v1/suppressions?channel=email&address=X@EXAMPLE.COM").json() == {"suppressed": True}
    bad = admin_api.post("/api/v1/suppressions", {"channel": "email", "address": "x@example.com", "reason": "meh"},
                         format="json")
    assert bad.status_code == 400


def _text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("""SELECT table_name, column_name FROM information_schema.columns
                           WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb',
                                 'json', 'ARRAY', 'inet')""")
        return cursor.fetchall()


def _tables_mentioning(*needles: str) -> set[str]:
    hits = set()
    with connection.cursor() as cursor:
        for table, column in _text_columns():
            for needle in needles:
                cursor.execute(f'SELECT 1 FROM "{table}" WHERE lower("{column}"::text) LIKE %s LIMIT 1',
                               [f"%{needle.lower()}%"])
                if cursor.fetchone():
                    hits.add(f"{table}.{column}")
    return hits


def test_erasure_leaves_no_pii_in_any_table(admin_api, api, person, tenant, smtp_sink, twilio_sms):
    from comms.services import device_register
    from preferences.services import consent_record, preferences_update, quiet_hours_set, subscription_request

    device_register(recipient=person, token="fcm-token-of-ana-123456", platform="android")
    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "sms", "enabled": True}],
                       updated_by="user", source="preference_center", ip="198.51.100.23", user_agent="Firefox/ana")
    quiet_hours_set(recipient=person, timezone_name="Europe/Madrid")
    subscription_request(recipient=person, list_id="promotions", source="signup")
    consent_record(tenant=tenant, address=person.phone, channel="sms", action="granted", source="keyword")
    smtp_sink.script(person.email, "550 5.1.1 <ana@example.com> mailbox unknown")
    for payload in ({"channel": "email", "recipient_id": "u-1", "subject": "Hola Ana", "body": "Tu reserva, Ana"},
                    {"channel": "in_app", "recipient_id": "u-1", "subject": "Hola", "body": "Ana, mira esto"},
                    {"channel": "sms", "to": person.phone, "body": "Code 1234 for ana@example.com"}):
        assert api.post("/api/v1/messages", payload, format="json").status_code == 202
    drain_all()
    from tracking.models import MessageEvent
    from webhooks.models import WebhookEvent

    sent_email = Message.objects.filter(channel="email", recipient_address=person.email).first()
    MessageEvent.objects.create(tenant=tenant, message_id=sent_email.id, event_type="opened", provider="comms",
                                recipient_address=person.email, ip_address="198.51.100.0", user_agent="Firefox/ana")
    WebhookEvent.objects.create(provider="twilio_sms", body="From=%2B14155550123&Body=STOP",
                                payload={"From": person.phone, "Body": "STOP"})
    needles = ("ana@example.com", "+14155550123", "4155550123", "fcm-token-of-ana", "198.51.100.23", "Firefox/ana")
    assert _tables_mentioning(*needles)  # the PII is really there before

    response = admin_api.post("/api/v1/recipients/u-1/erase")
    assert response.status_code == 200, response.content
    assert _tables_mentioning(*needles) == set()
    assert _tables_mentioning("u-1") <= {"django_admin_log.object_repr"}  # nothing keyed by the old id
    # Never contacted again, whoever sends to the address; the ledger kept its records, anonymised.
    assert is_suppressed(tenant=tenant, channel="email", address="ana@example.com")
    assert is_suppressed(tenant=tenant, channel="sms", address="+14155550123")
    again = api.post("/api/v1/messages", {"channel": "email", "to": "ana@example.com", "subject": "s", "body": "b"},
                     format="json")
    assert again.json()["code"] == "COMMS_SUPPRESSED"
    ledger = ConsentRecord.objects.all()
    assert ledger.count() == 2 and all(r.recipient_id is None and r.ip is None and r.erased_at for r in ledger)
    assert Recipient.objects.get(pk=person.pk).external_id.startswith("erased-")
    assert Message.objects.filter(recipient_address="erased").count() == 4  # 3 sends + the opt-in e-mail


def test_an_external_id_created_again_can_be_erased_again(admin_api):
    """schemathesis found it: the second erasure of a re-created id gave both rows one pseudonym (500)."""
    pseudonyms = []
    for _ in range(2):
        assert admin_api.put("/api/v1/recipients/again", {"email": "again@example.com"}, format="json").status_code == 201
        response = admin_api.post("/api/v1/recipients/again/erase")
        assert response.status_code == 200, response.content
        pseudonyms.append(response.json()["pseudonym"])
    assert pseudonyms[0] != pseudonyms[1] and all(p.startswith("erased-") for p in pseudonyms)
    assert Recipient.objects.filter(external_id__in=pseudonyms).count() == 2
