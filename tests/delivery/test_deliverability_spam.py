"""Spam scoring with a real spamd (SpamAssassin, local rules) and the send-time gate for marketing
(issue 19, item 6); the template side is in tests/templates_app/test_spam_score.py."""

from __future__ import annotations

import pytest

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery.deliverability import spam
from delivery.models import Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db
SPAMMY = {"subject": "FREE MONEY!!! ACT NOW", "text": "FREE MONEY act now",
          "html": "<html><body><h1>CLICK HERE NOW</h1><p>100% free viagra, guaranteed winner, act now!</p></body></html>"}


@pytest.fixture(autouse=True)
def _fresh_verdicts():
    spam._verdicts.clear()
    yield
    spam._verdicts.clear()


@pytest.fixture
def spamd_down(settings):
    settings.COMMS_SPAMD_HOST, settings.COMMS_SPAMD_PORT, settings.COMMS_SPAMD_TIMEOUT = "127.0.0.1", free_port(), 2.0


def test_parse_report_reads_rule_lines_highest_first():
    body = (" pts rule name              description\n---- ---------------------- ------\n"
            " 0.5 SUBJ_ALL_CAPS          Subject is all capitals\n 2.2 MPART_ALT_DIFF         BODY: HTML and text parts"
            " are different\n-0.0 NO_RECEIVED            Informational: message has no Received headers\n")
    assert [r["name"] for r in spam.parse_report(body)] == ["MPART_ALT_DIFF", "SUBJ_ALL_CAPS", "NO_RECEIVED"]


def test_real_spamd_scores_spammy_content_above_clean_content(spamd):
    dirty = spam.spam_score(**SPAMMY)
    clean = spam.spam_score(subject="Your order A-1001", html="<p>Hello Ada, your order ships today.</p>",
                            text="Hello Ada, your order ships today.")
    assert dirty.available and clean.available
    assert dirty.score > clean.score
    names = {r["name"] for r in dirty.rules}
    assert "SUBJ_ALL_CAPS" in names and dirty.threshold == 5.0
    assert dirty.label.startswith("spam score ")


def test_spamd_down_is_a_result_not_an_exception(spamd_down):
    result = spam.spam_score(**SPAMMY)
    assert not result.available and result.score is None and result.error
    assert result.label == "spam check unavailable"


def _send(api, category: str, **content) -> str:
    body = {"channel": "email", "to": "ada@example.com", "category": category,
            "subject": content.get("subject", "Hello"), "body": content.get("text", "Hi"),
            "body_html": content.get("html", "")}
    body = {k: v for k, v in body.items() if v != ""}
    response = api.post("/api/v1/messages", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_gate_holds_spammy_marketing_as_deferred_and_lets_transactional_through(api, spamd, settings, smtp_sink):
    settings.COMMS_SPAM_GATE_THRESHOLD = 0.5
    marketing, receipt = _send(api, "marketing", **SPAMMY), _send(api, "transactional", **SPAMMY)
    drain_all()
    held = Message.objects.get(id=marketing)
    assert held.status == Status.DEFERRED and held.failure_code == spam.HOLD_CODE
    assert "SUBJ_ALL_CAPS" in held.failure_reason and held.next_attempt_at > held.created_at
    assert Message.objects.get(id=receipt).status == Status.SENT
    settings.COMMS_SPAM_GATE_THRESHOLD = 0  # gate off: the held row is still there and goes out when due
    Message.objects.filter(id=marketing).update(status=Status.QUEUED, next_attempt_at=held.created_at)
    drain_all()
    assert Message.objects.get(id=marketing).status == Status.SENT


def test_gate_with_spamd_down_sends_unless_configured_to_hold(api, spamd_down, settings, smtp_sink):
    settings.COMMS_SPAM_GATE_THRESHOLD = 5.0
    first = _send(api, "marketing")
    drain_all()
    assert Message.objects.get(id=first).status == Status.SENT
    settings.COMMS_SPAM_GATE_HOLD_WHEN_DOWN = True
    second = _send(api, "marketing")
    drain_all()
    row = Message.objects.get(id=second)
    assert row.status == Status.DEFERRED and row.failure_code == spam.UNAVAILABLE_CODE
