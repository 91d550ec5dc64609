"""Consent ledger trigger, SMS keywords, quiet hours across DST and 24 time zones, CRM import."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import DatabaseError, connection, transaction

from comms import errors
from preferences.decision import in_window
from preferences.models import ConsentRecord, Suppression, UserPreference
from preferences.services import (
    consent_record, is_suppressed, preferences_import, send_decision, sms_keyword_handle,
)

pytestmark = pytest.mark.django_db


def test_consent_ledger_refuses_update_and_delete(tenant, person):
    [record] = consent_record(tenant=tenant, recipient=person, channel="email", action="granted", source="signup",
                            ip="198.51.100.7", user_agent="ua", consent_text="Yes please")
    for statement in ("UPDATE preferences_consentrecord SET action = 'withdrawn' WHERE id = %s",
                      "DELETE FROM preferences_consentrecord WHERE id = %s",
                      "UPDATE preferences_consentrecord SET ip = NULL, user_agent = '', recipient_id = NULL, "
                      "erased_at = now() WHERE id = %s"):  # the erasure redaction, without the erasure flag
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [record.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecord.objects.filter(pk=record.pk).update(consent_text="changed")
    # Even with the erasure flag only the redaction passes, nothing else.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL comms.consent_erasure = 'on'")
        cursor.execute("UPDATE preferences_consentrecord SET ip = NULL, user_agent = '', recipient_id = NULL, "
                       "erased_at = now(), action = 'withdrawn' WHERE id = %s", [record.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL comms.consent_erasure = 'on'")  # nor the cause's key (migration 0003)
        cursor.execute("UPDATE preferences_consentrecord SET ip = NULL, user_agent = '', recipient_id = NULL, "
                       "erased_at = now(), source_ref = 'x' WHERE id = %s", [record.pk])
    record.refresh_from_db()
    assert (record.action, record.consent_text, str(record.ip)) == ("granted", "Yes please", "198.51.100.7")


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "Arrêt"])
def test_stop_keywords_suppress_and_record_withdrawal(tenant, word, settings):
    reply = sms_keyword_handle(tenant=tenant, from_number="+14155550199", to_number="+15005550006", body=word)
    assert reply == settings.COMMS_SMS_STOP_TEXT
    assert is_suppressed(tenant=tenant, channel="sms", address="+14155550199")
    [record] = ConsentRecord.objects.filter(tenant_id=tenant.pk)
    assert (record.action, record.channel, record.source) == ("withdrawn", "sms", "sms_keyword")
    decision = send_decision(recipient=None, tenant=tenant, channel="sms", category="security",
                             address="+14155550199")
    assert decision.code == "COMMS_SUPPRESSED"  # after STOP nothing goes, not even critical


def test_start_resubscribes_help_answers_and_other_text_is_ignored(tenant, settings):
    settings.COMMS_SMS_HELP_TEXT = "Acme alerts: help at {url}. Reply STOP to opt out."
    number = "+14155550198"
    sms_keyword_handle(tenant=tenant, from_number=number, to_number="+15005550006", body="STOP")
    assert sms_keyword_handle(tenant=tenant, from_number=number, to_number="+15005550006",
                              body="start") == settings.COMMS_SMS_START_TEXT
    assert not is_suppressed(tenant=tenant, channel="sms", address=number)
    assert list(ConsentRecord.objects.order_by("id").values_list("action", flat=True)) == ["withdrawn", "granted"]
    assert sms_keyword_handle(tenant=tenant, from_number=number, to_number="x", body="HELP") == (
        f"Acme alerts: help at {settings.COMMS_PUBLIC_URL}. Reply STOP to opt out.")
    assert sms_keyword_handle(tenant=tenant, from_number=number, to_number="x", body="stop by later?") is None
    # START never lifts a carrier-reported invalid number.
    from preferences.services import suppression_add

    suppression_add(tenant=tenant, channel="sms", address=number, reason="invalid", source="twilio")
    sms_keyword_handle(tenant=tenant, from_number=number, to_number="x", body="START")
    assert Suppression.objects.get(channel="sms").reason == "invalid"


ZONES = ["Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver", "America/Chicago",
         "America/New_York", "America/Sao_Paulo", "America/St_Johns", "Atlantic/Azores", "Europe/London",
         "Europe/Paris", "Africa/Cairo", "Europe/Moscow", "Asia/Tehran", "Asia/Dubai", "Asia/Kabul",
         "Asia/Kolkata", "Asia/Kathmandu", "Asia/Shanghai", "Australia/Eucla", "Asia/Tokyo", "Australia/Adelaide",
         "Australia/Sydney", "Pacific/Chatham"]


@pytest.mark.parametrize("day", [dt.date(2026, 3, 8), dt.date(2026, 3, 29), dt.date(2026, 10, 4),
                                 dt.date(2026, 11, 1)])  # US/EU/AU DST changes
def test_no_marketing_sms_outside_8_to_21_local_over_a_simulated_day(tenant, day, settings):
    """24 recipients in 24 zones (half-hour and 45-minute offsets included), one batch decision every
    15 minutes of the day, as the worker makes them."""
    from comms.services import recipient_upsert
    from preferences.decision import Item, decide_many
    from preferences.services import preferences_update, quiet_hours_set

    settings.COMMS_QUIET_HOURS_JITTER = 900
    assert len(ZONES) == 24
    items = []
    for i, zone in enumerate(ZONES):
        person, _ = recipient_upsert(tenant=tenant, external_id=f"tz-{i}", data={
            "phone": f"+1415555{i:04d}", "timezone": zone})
        # The person switches promotional texts on (their consent is recorded with the text shown) and
        # turns their own quiet hours off: the TCPA window still applies.
        preferences_update(recipient=person, changes=[{"category": "promotions", "channel": "sms", "enabled": True}],
                           updated_by="user", source="preference_center", consent_text="Texts please")
        quiet_hours_set(recipient=person, enabled=False)
        items.append(Item(key=zone, tenant_id=tenant.pk, recipient_id=person.pk, channel="sms", category="promotions",
                          address=person.phone, timezone=zone))
    sent = deferred = 0
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc)
    for step in range(96):  # every 15 minutes of the UTC day
        now = start + dt.timedelta(minutes=15 * step)
        for zone, decision in decide_many(items, now=now).items():
            tz = zoneinfo.ZoneInfo(zone)
            local = now.astimezone(tz).time()
            if decision.verdict == "allow":
                sent += 1
                assert in_window(local, dt.time(8), dt.time(21)), (zone, now, local)
            else:
                deferred += 1
                assert decision.code == "COMMS_QUIET_HOURS" and decision.until > now, decision
                until_local = decision.until.astimezone(tz)
                assert dt.time(8) <= until_local.time() < dt.time(8, 17), (zone, now, until_local)
                # 11 night hours, one more on a fall-back night, plus the jitter.
                assert decision.until - now < dt.timedelta(hours=12, minutes=17)
    assert sent + deferred == 24 * 96
    assert sent == pytest.approx(24 * 96 * 13 / 24, abs=24 * 2) and deferred > 0


def test_bare_number_uses_the_numbers_time_zone(tenant):
    consent_record(tenant=tenant, address="+33612345678", channel="sms", action="granted", source="signup")
    paris_night = dt.datetime(2026, 7, 1, 22, 30, tzinfo=dt.timezone.utc)  # 00:30 in Paris, 15:30 in LA
    decision = send_decision(recipient=None, tenant=tenant, channel="sms", category="marketing",
                             address="+33612345678", now=paris_night)
    assert decision.verdict == "defer"
    assert decision.until.astimezone(zoneinfo.ZoneInfo("Europe/Paris")).hour == 8


CSV = """external_id,channel,category,enabled,frequency
u-1,email,booking,false,
u-1,email,promotions,true,
u-1,push,messages,true,weekly_digest
nobody,email,booking,false,
u-1,fax,booking,false,
u-1,email,gossip,false,
u-1,email,security,false,
u-1,email,reviews,maybe,
u-1,email
"""


def test_crm_import_most_restrictive_wins_and_reports_every_bad_row(tenant, person):
    from preferences.services import preferences_update

    preferences_update(recipient=person, changes=[{"category": "promotions", "channel": "email", "enabled": False}],
                       updated_by="user", source="preference_center")
    report = preferences_import(tenant=tenant, csv_text=CSV)
    assert [e["line"] for e in report.errors] == [5, 6, 7, 8, 9, 10]
    assert "unknown recipient" in report.errors[0]["error"] and "fax" in report.errors[1]["error"]
    prefs = {(p.channel, p.category): (p.enabled, p.frequency, p.updated_by)
             for p in UserPreference.objects.filter(recipient=person)}
    assert prefs[("email", "booking")] == (False, "realtime", "import")
    assert prefs[("email", "promotions")][:2] == (False, "realtime")  # the person's opt-out outranks the CRM
    assert prefs[("push", "messages")] == (True, "weekly_digest", "import")
    # A second import cannot loosen it again.
    preferences_import(tenant=tenant, csv_text="external_id,channel,category,enabled,frequency\n"
                                               "u-1,push,messages,true,realtime\nu-1,email,booking,true,\n")
    assert UserPreference.objects.get(recipient=person, channel="push", category="messages").frequency == "weekly_digest"
    assert not UserPreference.objects.get(recipient=person, channel="email", category="booking").enabled


def test_crm_import_atomic_imports_nothing_when_a_row_is_bad(tenant, person):
    with pytest.raises(errors.CommsError) as exc:
        preferences_import(tenant=tenant, csv_text=CSV, atomic=True)
    assert exc.value.code == "COMMS_IMPORT_FAILED" and exc.value.details["bad_rows"] == 6
    assert not UserPreference.objects.filter(recipient=person).exists()
    with pytest.raises(errors.CommsError):
        preferences_import(tenant=tenant, csv_text="who,what\n1,2\n")


def test_import_command_reports_bad_rows(tenant, person, tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "crm.csv"
    path.write_text(CSV)
    with pytest.raises(CommandError, match="6 bad rows"):
        call_command("preferences_import", str(path), "--atomic")
    assert not UserPreference.objects.filter(recipient=person).exists()
    with pytest.raises(SystemExit) as exc:
        call_command("preferences_import", str(path))
    assert exc.value.code == 2 and UserPreference.objects.filter(recipient=person, category="booking").exists()
