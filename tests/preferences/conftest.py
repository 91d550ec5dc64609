"""Fixtures for the preferences tests: directory recipients and a fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest

from comms.services import recipient_upsert
from preferences import catalogue


@pytest.fixture(autouse=True)
def _fresh_catalogue():
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


@pytest.fixture
def person(tenant):
    recipient, _ = recipient_upsert(tenant=tenant, external_id="u-1", data={
        "email": "ana@example.com", "phone": "+14155550123", "timezone": "America/New_York", "locale": "es-ES"})
    return recipient


@pytest.fixture
def noon_ny():
    """Noon in New York on an ordinary day (outside every quiet window)."""
    return dt.datetime(2026, 6, 10, 16, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def night_ny():
    """23:30 in New York: inside the default 21:00-08:00 quiet window."""
    return dt.datetime(2026, 6, 11, 3, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def twilio_sms(twilio):
    """The Twilio Messages API stand-in as the SMS provider (tests/conftest.py's `twilio`)."""
    return twilio
