"""The decision table: every rule, and that they apply in order (suppression → consent →
preference → frequency → quiet hours)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from preferences.services import (
    consent_record, preferences_update, quiet_hours_set, send_decision, subscription_request, suppression_add,
)

pytestmark = pytest.mark.django_db
NY = zoneinfo.ZoneInfo("America/New_York")


def d(person, channel, category, now, address=None):
    default = {"email": person.email, "sms": person.phone}.get(channel, "")
    return send_decision(recipient=person, channel=channel, category=category, address=address or default, now=now)


@pytest.mark.parametrize("channel,category,verdict,code", [
    ("email", "booking", "allow", ""), ("email", "promotions", "block", "COMMS_NO_CONSENT"),
    ("email", "transactional", "allow", ""), ("email", "marketing", "allow", ""),
    ("push", "booking", "allow", ""), ("push", "messages", "allow", ""), ("push", "finance", "block", "COMMS_PREF_BLOCKED"),
    ("sms", "security", "allow", ""), ("sms", "booking", "block", "COMMS_PREF_BLOCKED"),
    ("sms", "promotions", "block", "COMMS_NO_CONSENT"), ("in_app", "promotions", "allow", ""),
    ("in_app", "reviews", "allow", ""),
])
def test_default_matrix_of_seed_001(person, noon_ny, channel, category, verdict, code):
    decision = d(person, channel, category, noon_ny)
    assert (decision.verdict, decision.code) == (verdict, code)


def test_suppression_comes_first_and_applies_to_every_recipient_with_the_address(tenant, person, noon_ny):
    from comms.services import recipient_upsert

    twin, _ = recipient_upsert(tenant=tenant, external_id="u-2", data={"email": "ANA@Example.com"})
    suppression_add(tenant=tenant, channel="email", address="ana@example.com", reason="complaint", source="ses")
    for who in (person, twin):
        assert d(who, "email", "booking", noon_ny, address=who.email).code == "COMMS_SUPPRESSED"
    # Even with an explicit opt-in the suppression wins (order), and a bare address is covered too.
    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "email", "enabled": True}],
                       updated_by="user", source="test")
    assert d(person, "email", "booking", noon_ny).code == "COMMS_SUPPRESSED"
    assert send_decision(recipient=None, tenant=tenant, channel="email", category="transactional",
                         address="ana@example.com", now=noon_ny).code == "COMMS_SUPPRESSED"


def test_critical_bypasses_unsubscribe_but_never_a_hard_bounce(tenant, person, noon_ny):
    suppression_add(tenant=tenant, channel="email", address=person.email, reason="unsubscribe", source="link")
    assert d(person, "email", "security", noon_ny).verdict == "allow"
    assert d(person, "email", "booking", noon_ny).code == "COMMS_SUPPRESSED"
    suppression_add(tenant=tenant, channel="email", address=person.email, reason="hard_bounce", source="smtp")
    assert d(person, "email", "security", noon_ny).code == "COMMS_SUPPRESSED"
    # A later, lighter reason does not downgrade the entry.
    suppression_add(tenant=tenant, channel="email", address=person.email, reason="unsubscribe", source="link")
    assert d(person, "email", "security", noon_ny).code == "COMMS_SUPPRESSED"


def test_expired_soft_suppression_no_longer_blocks(tenant, person, noon_ny):
    suppression_add(tenant=tenant, channel="email", address=person.email, reason="manual", source="admin",
                    expires_at=noon_ny - dt.timedelta(minutes=1))
    assert d(person, "email", "booking", noon_ny).verdict == "allow"


def test_consent_before_preference_for_marketing_sms(tenant, person, noon_ny):
    preferences_update(recipient=person, changes=[{"category": "promotions", "channel": "sms", "enabled": True}],
                       updated_by="admin", source="test")
    # A preference an admin set is not the person's express written consent.
    [row] = [r for r in person.preferences.all()]
    assert d(person, "sms", "promotions", noon_ny).code in ("COMMS_NO_CONSENT",)
    consent_record(tenant=tenant, recipient=person, channel="sms", category="promotions", action="granted",
                   source="signup", consent_text="Text me offers")
    assert d(person, "sms", "promotions", noon_ny).verdict == "allow"
    consent_record(tenant=tenant, address=person.phone, channel="sms", action="withdrawn", source="sms_keyword")
    assert d(person, "sms", "promotions", noon_ny).code == "COMMS_NO_CONSENT"
    assert row.enabled


def test_double_opt_in_blocks_until_confirmed(person, noon_ny, smtp_sink):
    from preferences.models import ChannelSubscription
    from preferences.subscriptions import subscription_confirm
    from preferences.tokens import confirm_token

    preferences_update(recipient=person, changes=[{"category": "promotions", "channel": "email", "enabled": True}],
                       updated_by="user", source="test")
    sub = subscription_request(recipient=person, list_id="promotions", source="signup_form")
    assert sub.status == "pending"
    assert d(person, "email", "promotions", noon_ny).code == "COMMS_NO_CONSENT"
    subscription_confirm(token=confirm_token(subscription=sub), ip="203.0.113.9", user_agent="pytest")
    assert ChannelSubscription.objects.get(pk=sub.pk).double_opt_in_confirmed
    assert d(person, "email", "promotions", noon_ny).verdict == "allow"


def test_preference_and_frequency(person, noon_ny):
    preferences_update(recipient=person, changes=[
        {"category": "booking", "channel": "email", "enabled": False},
        {"category": "reviews", "channel": "email", "enabled": True, "frequency": "daily_digest"},
        {"category": "messages", "channel": "email", "enabled": True, "frequency": "never"},
        {"category": "finance", "channel": "push", "enabled": True},
    ], updated_by="user", source="test")
    assert d(person, "email", "booking", noon_ny).code == "COMMS_PREF_BLOCKED"
    digest = d(person, "email", "reviews", noon_ny)
    assert (digest.verdict, digest.frequency) == ("digest", "daily_digest")
    assert d(person, "email", "messages", noon_ny).code == "COMMS_PREF_BLOCKED"
    assert d(person, "push", "finance", noon_ny).verdict == "allow"


def test_critical_cannot_be_opted_out(person):
    from comms import errors

    with pytest.raises(errors.CommsError):
        preferences_update(recipient=person, changes=[{"category": "security", "channel": "email", "enabled": False}],
                           updated_by="user", source="test")


def test_quiet_hours_defer_to_window_end_plus_jitter(person, night_ny, settings):
    settings.COMMS_QUIET_HOURS_JITTER = 300
    decision = d(person, "push", "messages", night_ny)
    assert (decision.verdict, decision.code) == ("defer", "COMMS_QUIET_HOURS")
    local = decision.until.astimezone(NY)
    assert local.date() == dt.date(2026, 6, 11) and dt.time(8, 1) <= local.time() <= dt.time(8, 6)
    # Email is not held back by default, critical never, and booking has its own window (23:00-07:00).
    assert d(person, "email", "messages", night_ny).verdict == "allow"
    assert d(person, "push", "security", night_ny).verdict == "allow"
    booking = d(person, "push", "booking", night_ny)
    assert booking.until.astimezone(NY).time() >= dt.time(7, 1)
    early = dt.datetime(2026, 6, 11, 11, 30, tzinfo=dt.timezone.utc)  # 07:30 NY: booking goes, messages wait
    assert d(person, "push", "booking", early).verdict == "allow"
    assert d(person, "push", "messages", early).verdict == "defer"


def test_own_quiet_hours_per_category_and_disabled(person, night_ny):
    quiet_hours_set(recipient=person, enabled=False)
    assert d(person, "push", "messages", night_ny).verdict == "allow"
    quiet_hours_set(recipient=person, category="messages", start=dt.time(22), end=dt.time(6), channels=["push", "email"])
    assert d(person, "email", "messages", night_ny).verdict == "defer"
    assert d(person, "push", "reviews", night_ny).verdict == "allow"  # general window is off


def test_quiet_hours_bad_input(person):
    from comms import errors

    with pytest.raises(errors.CommsError) as exc:
        quiet_hours_set(recipient=person, start=dt.time(9), end=dt.time(9))
    assert exc.value.code == "COMMS_INVALID_QUIET_HOURS"
    with pytest.raises(errors.CommsError) as exc:
        quiet_hours_set(recipient=person, timezone_name="Mars/Olympus")
    assert exc.value.code == "COMMS_INVALID_TIMEZONE"
    with pytest.raises(errors.CommsError) as exc:
        quiet_hours_set(recipient=person, category="gossip")
    assert exc.value.code == "COMMS_UNKNOWN_CATEGORY"
