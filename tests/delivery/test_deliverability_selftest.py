"""Compliance self-test (issue 19, item 9): passing and failing fixtures per rule, through the
management command (exit code) and the admin-scoped endpoint."""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command

from comms.enums import Status
from delivery.deliverability.selftest import dkim_problem
from delivery.models import Message
from preferences import catalogue
from preferences.models import NotificationCategory

pytestmark = pytest.mark.django_db
POSTAL = "Example Shop, 1 Main Street, Springfield, IL 62701, USA"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
SIGN_DOMAIN = {"d": b"example.com"}


def sign(data: bytes, *, message) -> bytes:
    """A real dkimpy signer (the self-test's COMMS_DKIM_SIGNER hook) for a configurable d=."""
    return dkim.sign(data, b"s1", SIGN_DOMAIN["d"], _KEY, include_headers=[b"From", b"To", b"Subject"]) + data


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.COMMS_PUBLIC_URL = "https://comms.example.com"
    settings.COMMS_POSTAL_ADDRESS = POSTAL
    settings.DEFAULT_FROM_EMAIL = "news@example.com"
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


def _row(tenant, channel: str, category: str, *, body: str = "Hello", html: str = "", to: str = "") -> Message:
    return Message.objects.create(
        tenant=tenant, channel=channel, category=category, status=Status.SENT, subject="Hi", body=body,
        body_html=html, recipient_address=to or ("ada@example.com" if channel == "email" else "+14155550123"))


def _rule(report: dict, name: str) -> dict:
    return next(r for r in report["rules"] if r["rule"] == name)


def _run(admin_api) -> dict:
    response = admin_api.get("/api/v1/compliance/selftest")
    assert response.status_code == 200, response.content
    return response.json()


def test_all_rules_pass_on_compliant_mail_and_sms(admin_api, tenant, settings):
    settings.COMMS_DKIM_SIGNER = "tests.delivery.test_deliverability_selftest.sign"
    _row(tenant, "email", "marketing", body=f"Big sale\n{POSTAL}", html=f"<p>Big sale</p><p>{POSTAL}</p>")
    _row(tenant, "email", "security", body="Your code is 123456")  # critical: no unsubscribe expected
    _row(tenant, "sms", "marketing", body="Sale today")  # the channel policy adds STOP/HELP
    report = _run(admin_api)
    assert report["ok"] is True and report["sampled"] == {"email": 2, "sms": 1}
    assert {r["rule"]: r["status"] for r in report["rules"]} == {
        "list_unsubscribe": "pass", "dkim_alignment": "pass", "sms_stop_help": "pass", "postal_address": "pass"}
    assert _rule(report, "list_unsubscribe")["checked"] == 1


def test_list_unsubscribe_without_https_fails(admin_api, tenant, settings):
    settings.COMMS_PUBLIC_URL = "http://comms.example.com"  # RFC 8058 one-click needs an https URI
    row = _row(tenant, "email", "transactional")
    rule = _rule(_run(admin_api), "list_unsubscribe")
    assert rule["status"] == "fail" and rule["examples"][0]["message_id"] == str(row.id)
    assert "https" in rule["examples"][0]["problem"]


def test_dkim_unsigned_misaligned_and_aligned(tenant, settings):
    _row(tenant, "email", "transactional")
    from delivery.deliverability.selftest import compliance_selftest

    assert _rule(compliance_selftest(), "dkim_alignment")["status"] == "unsigned"
    settings.COMMS_DKIM_SIGNER = "tests.delivery.test_deliverability_selftest.sign"
    SIGN_DOMAIN["d"] = b"other-brand.net"
    try:
        report = compliance_selftest()
    finally:
        SIGN_DOMAIN["d"] = b"example.com"
    rule = _rule(report, "dkim_alignment")
    assert rule["status"] == "fail" and "other-brand.net" in rule["examples"][0]["problem"] and not report["ok"]
    assert dkim_problem({"DKIM-Signature": "v=1; a=rsa-sha256; d=mail.example.com; s=s1"},
                        "Shop <news@example.com>") == (None, False)  # relaxed alignment: a subdomain aligns


def test_marketing_sms_in_a_tenant_marketing_category_without_stop_help_fails(admin_api, tenant):
    NotificationCategory.objects.create(tenant=tenant, key="promotions", name="Promotions", marketing=True)
    catalogue.clear_cache()
    row = _row(tenant, "sms", "promotions", body="50% off today only")
    _row(tenant, "sms", "transactional", body="Your parcel is out")  # not marketing: not checked
    rule = _rule(_run(admin_api), "sms_stop_help")
    assert rule["status"] == "fail" and rule["checked"] == 1
    assert rule["examples"][0] == {"message_id": str(row.id), "to": "+14155550123",
                                   "problem": "no STOP or HELP wording"}


def test_marketing_mail_without_postal_address_fails(admin_api, tenant, settings):
    _row(tenant, "email", "marketing", body="Big sale", html="<p>Big sale</p>")
    assert _rule(_run(admin_api), "postal_address")["status"] == "fail"
    settings.COMMS_POSTAL_ADDRESS = ""
    assert _rule(_run(admin_api), "postal_address")["examples"][0]["problem"] == "COMMS_POSTAL_ADDRESS is not configured"


def test_command_exit_code_follows_the_verdict(tenant, capsys):
    _row(tenant, "email", "security", body="Your code is 123456")
    call_command("comms_compliance_selftest")  # passes (unsigned is reported, not a failure)
    assert "UNSIGNED" in capsys.readouterr().out
    _row(tenant, "email", "marketing", body="Big sale")
    with pytest.raises(SystemExit) as exit_info:
        call_command("comms_compliance_selftest", "--json")
    assert exit_info.value.code == 1 and '"postal_address"' in capsys.readouterr().out


def test_endpoint_needs_the_admin_scope_and_validates_its_query(api, admin_api):
    assert api.get("/api/v1/compliance/selftest").json()["code"] == "COMMS_FORBIDDEN"
    bad = admin_api.get("/api/v1/compliance/selftest?sample=0")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_VALIDATION_ERROR"


def test_yesterdays_and_other_tenants_rows_are_not_sampled(admin_api, tenant, other_tenant):
    _row(other_tenant, "email", "marketing", body="Big sale")
    old = _row(tenant, "email", "marketing", body="Big sale")
    Message.objects.filter(id=old.id).update(created_at=old.created_at.replace(year=2020))
    report = _run(admin_api)
    assert report["sampled"] == {"email": 0, "sms": 0} and report["ok"] is True


def test_dkim_alignment_uses_the_tenants_real_sending_domain_keys(tenant):
    """The default signer is the SMTP provider's own: with a sending domain for the From domain the
    sample is signed with its keys and aligned; without one it is reported unsigned."""
    from delivery.deliverability import dkim as dkim_signing
    from delivery.deliverability.domains import sending_domain_create
    from delivery.deliverability.selftest import compliance_selftest

    _row(tenant, "email", "transactional")
    assert _rule(compliance_selftest(), "dkim_alignment")["status"] == "unsigned"
    sending_domain_create(tenant=tenant, domain="example.com", actor="test")
    dkim_signing.cache_clear()
    rule = _rule(compliance_selftest(), "dkim_alignment")
    assert rule["status"] == "pass" and rule["checked"] == 1
