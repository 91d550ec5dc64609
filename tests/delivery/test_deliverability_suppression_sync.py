"""Suppression sync with the ESPs (issue 19, item 8) against loopback stand-ins speaking each ESP's JSON
(SendGrid, Mailgun, Postmark) and boto3's sesv2 client against the SES suppression-list stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.devserver.standins.esp import EspStandIn
from comms.devserver.standins.ses_suppression import SesSuppressionStandIn
from delivery.deliverability.models_probes import SuppressionSyncState
from delivery.deliverability.suppression_sync import suppression_sync_all, suppression_sync_esp
from preferences.hashing import address_hash
from preferences.models import ConsentRecord, Suppression
from preferences.services import suppression_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def esps(settings, monkeypatch):
    stands = {kind: EspStandIn(kind) for kind in ("sendgrid", "mailgun", "postmark")}
    ses = SesSuppressionStandIn()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.COMMS_SUPPRESSION_SYNC_ESPS = ["sendgrid", "mailgun", "postmark", "ses"]
    settings.COMMS_SUPPRESSION_SYNC_TIMEOUT = 1.0
    settings.COMMS_SUPPRESSION_SYNC = {
        "sendgrid": {"api_url": stands["sendgrid"].api_url, "api_key": stands["sendgrid"].key},
        "mailgun": {"api_url": stands["mailgun"].api_url, "api_key": stands["mailgun"].key, "domain": "mg.example.com"},
        "postmark": {"api_url": stands["postmark"].api_url, "api_key": stands["postmark"].key, "stream": "broadcast"},
        "ses": {"endpoint_url": ses.endpoint_url, "region_name": "us-east-1"},
    }
    stands["ses"] = ses
    yield stands
    for stand in stands.values():
        stand.close()


def _ours(tenant):
    """Three suppressions of ours, old enough to be past the settle window, plus a temporary one."""
    past = timezone.now() - timedelta(minutes=1)
    for address, reason in (("gone@example.com", "hard_bounce"), ("angry@example.com", "complaint"),
                            ("bye@example.com", "unsubscribe")):
        suppression_add(tenant=tenant, channel="email", address=address, reason=reason, source="test")
    suppression_add(tenant=tenant, channel="email", address="pause@example.com", reason="manual", source="test",
                    expires_at=timezone.now() + timedelta(days=1))
    Suppression.objects.update(updated_at=past)


def test_push_reaches_every_esp_in_its_own_shape(tenant, esps):
    _ours(tenant)
    results = suppression_sync_all()
    assert [r["error"] for r in results] == [None] * 4 and all(r["pushed"] == 3 for r in results)
    assert set(esps["sendgrid"].suppressions.lists["unsubscribes"]) == {
        "gone@example.com", "angry@example.com", "bye@example.com"}  # SendGrid: global unsubscribes only
    mailgun = esps["mailgun"].suppressions.lists
    assert (set(mailgun["bounces"]), set(mailgun["complaints"]), set(mailgun["unsubscribes"])) == (
        {"gone@example.com"}, {"angry@example.com"}, {"bye@example.com"})
    assert "/message-streams/broadcast/suppressions" in [r["path"] for r in esps["postmark"].requests]
    assert esps["ses"].entries["gone@example.com"][0] == "BOUNCE"
    assert esps["ses"].entries["bye@example.com"][0] == "COMPLAINT"
    assert "pause@example.com" not in esps["ses"].entries  # temporary entries stay ours
    # The watermark moved: a second run pushes nothing again.
    assert all(r["pushed"] == 0 for r in suppression_sync_all())


def test_import_most_restrictive_wins_and_every_change_is_in_the_ledger(tenant, esps):
    suppression_add(tenant=tenant, channel="email", address="both@example.com", reason="unsubscribe", source="test")
    suppression_add(tenant=tenant, channel="email", address="held@example.com", reason="hard_bounce", source="test")
    esps["sendgrid"].suppressions.seed("bounces", "both@example.com")  # heavier than our unsubscribe
    esps["sendgrid"].suppressions.seed("unsubscribes", "held@example.com")  # lighter than our hard bounce
    esps["mailgun"].suppressions.seed("complaints", "mg@example.com")
    esps["postmark"].suppressions.seed("bounces", "pm@example.com")
    esps["ses"].seed("ses@example.com", "COMPLAINT")
    results = {r["esp"]: r for r in suppression_sync_all()}
    assert results["sendgrid"]["imported"] == 1 and results["sendgrid"]["listed"] == 2
    reasons = {s.address: (s.reason, s.source) for s in Suppression.objects.filter(tenant=tenant)}
    assert reasons["both@example.com"] == ("hard_bounce", "esp:sendgrid")
    assert reasons["held@example.com"] == ("hard_bounce", "test")  # unchanged: ours was stricter
    assert reasons["mg@example.com"] == ("complaint", "esp:mailgun")
    assert reasons["pm@example.com"] == ("hard_bounce", "esp:postmark")
    assert reasons["ses@example.com"] == ("complaint", "esp:ses")
    ledger = {(r.address_hash, r.source) for r in ConsentRecord.objects.filter(action="withdrawn")}
    assert (address_hash("email", "both@example.com"), "esp_sync:sendgrid") in ledger
    assert (address_hash("email", "ses@example.com"), "esp_sync:ses") in ledger
    assert not any(h == address_hash("email", "held@example.com") for h, _ in ledger)
    before = ConsentRecord.objects.count()
    suppression_sync_all()  # nothing new on either side: no new ledger rows (append-only, no duplicates)
    assert ConsentRecord.objects.count() == before


def test_mailgun_pages_are_followed(tenant, esps, monkeypatch):
    from delivery.deliverability import esp_suppression

    monkeypatch.setattr(esp_suppression.Mailgun, "PAGE", 2)
    for i in range(5):
        esps["mailgun"].suppressions.seed("unsubscribes", f"u{i}@example.com")
    result = suppression_sync_esp(tenant=tenant, esp="mailgun")
    assert result["imported"] == 5


@pytest.mark.parametrize("fault", ["http", "timeout", "malformed", "bad_entry"])
def test_esp_faults_are_typed_retried_later_and_lose_nothing(tenant, esps, fault):
    _ours(tenant)
    sendgrid = esps["sendgrid"]
    if fault == "http":
        sendgrid.fail(503, {"errors": [{"message": "try later"}]})
    elif fault == "timeout":
        sendgrid.latency_ms = 1500  # past COMMS_SUPPRESSION_SYNC_TIMEOUT
    elif fault == "malformed":
        sendgrid.fail(200, {"unexpected": True})
    else:
        sendgrid.fail(201, {"recipient_emails": []})  # the push is fine ...
        sendgrid.fail(200, [{"created": 1, "mail": "x"}])  # ... the list has an entry without "email"
    result = suppression_sync_esp(tenant=tenant, esp="sendgrid")
    code = {"http": "COMMS_ESP_SYNC_FAILED", "timeout": "COMMS_ESP_SYNC_FAILED",
            "malformed": "COMMS_ESP_SYNC_MALFORMED", "bad_entry": "COMMS_ESP_SYNC_MALFORMED"}[fault]
    assert result["error"]["code"] == code
    state = SuppressionSyncState.objects.get(esp="sendgrid")
    assert state.failures == 1 and state.last_error_code == code and state.next_attempt_at > timezone.now()
    if fault != "bad_entry":
        assert state.pushed_until is None  # not accepted: the watermark did not move
    assert suppression_sync_esp(tenant=tenant, esp="sendgrid")["skipped"] == "backing off"
    sendgrid.latency_ms = 0
    sendgrid.replies.clear()
    retry = suppression_sync_esp(tenant=tenant, esp="sendgrid", force=True)
    assert retry["error"] is None
    if fault != "bad_entry":  # (there the scripted 201 stood in for the accepted push)
        assert set(sendgrid.suppressions.lists["unsubscribes"]) == {
            "gone@example.com", "angry@example.com", "bye@example.com"}
    state.refresh_from_db()
    assert state.failures == 0 and state.last_error_code == ""


def test_ses_errors_are_typed(tenant, esps):
    _ours(tenant)
    esps["ses"].fail(429, {"message": "Rate exceeded"})
    result = suppression_sync_esp(tenant=tenant, esp="ses")
    assert result["error"]["code"] == "COMMS_ESP_SYNC_FAILED" and "429" in str(result["error"]["details"]["status"])
