"""Voice in the can-send decision: a marketing call needs its own TCPA consent (an SMS grant does not
cover calls), only rings 08:00-21:00 in the recipient's zone, respects quiet hours, and follows the
category's SMS default when the category names no voice default."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from preferences.services import consent_record, effective_preferences, preferences_update, send_decision

pytestmark = pytest.mark.django_db
NY = zoneinfo.ZoneInfo("America/New_York")


def call(person, category, now, address=None):
    return send_decision(recipient=person, channel="voice", category=category, address=address or person.phone,
                         now=now)


def test_marketing_call_without_consent_is_blocked_with_a_reason(tenant, person, noon_ny):
    preferences_update(recipient=person, changes=[{"category": "marketing", "channel": "voice", "enabled": True}],
                       updated_by="system", source="test")  # an opt-in switch is not TCPA consent by itself
    decision = call(person, "marketing", noon_ny)
    assert (decision.verdict, decision.code) == ("block", "COMMS_NO_CONSENT")
    assert "calls" in decision.reason
    # A consent to marketing texts does not cover calls (47 CFR 64.1200(a)(2)).
    consent_record(tenant=tenant, address=person.phone, channel="sms", action="granted", source="test",
                   consent_text="Text me offers")
    assert call(person, "marketing", noon_ny).code == "COMMS_NO_CONSENT"
    consent_record(tenant=tenant, address=person.phone, channel="voice", action="granted", source="test",
                   consent_text="Call me with offers")
    assert call(person, "marketing", noon_ny).verdict == "allow"


def test_marketing_calls_wait_for_the_tcpa_window_in_the_recipients_zone(tenant, person):
    consent_record(tenant=tenant, address=person.phone, channel="voice", action="granted", source="test",
                   consent_text="Call me with offers")
    preferences_update(recipient=person, changes=[{"category": "marketing", "channel": "voice", "enabled": True}],
                       updated_by="user", source="test")
    early = dt.datetime(2026, 6, 10, 7, 30, tzinfo=NY)  # 07:30 New York
    decision = call(person, "marketing", early)
    assert (decision.verdict, decision.code) == ("defer", "COMMS_QUIET_HOURS")
    assert "marketing calls only 08:00-21:00" in decision.reason
    local = decision.until.astimezone(NY)
    assert (local.date(), local.hour) == (early.date(), 8)  # 08:00 plus a minute and the jitter
    assert call(person, "marketing", dt.datetime(2026, 6, 10, 12, 0, tzinfo=NY)).verdict == "allow"


def test_transactional_calls_respect_quiet_hours_and_critical_ones_do_not(person, night_ny):
    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "voice", "enabled": True}],
                       updated_by="user", source="test")
    assert call(person, "booking", night_ny).code == "COMMS_QUIET_HOURS"  # voice is a default quiet channel
    assert call(person, "security", night_ny).verdict == "allow"


def test_voice_follows_the_categorys_sms_default(person, noon_ny):
    assert call(person, "transactional", noon_ny).verdict == "allow"  # SMS on by default: calls too
    assert call(person, "booking", noon_ny).code == "COMMS_PREF_BLOCKED"  # SMS off by default: calls too
    matrix = {(row["category"], row["channel"]): row for row in effective_preferences(recipient=person)}
    assert matrix[("transactional", "voice")]["enabled"] is True
    assert matrix[("booking", "voice")]["enabled"] is False


def test_the_preference_centre_leaves_voice_alone(person):
    """The page has no voice column yet: saving it must not switch calls off."""
    from preferences.center import page_context, preference_center_save

    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "voice", "enabled": True}],
                       updated_by="user", source="test")
    context = page_context(recipient=person)
    assert "Voice" not in context["channels"]
    preference_center_save(recipient=person, form={"pref:booking:email": "on", "timezone": "America/New_York",
                                                   "quiet_start": "21:00", "quiet_end": "08:00"},
                           ip=None, user_agent="")
    matrix = {(row["category"], row["channel"]): row for row in effective_preferences(recipient=person)}
    assert matrix[("booking", "voice")]["enabled"] is True
