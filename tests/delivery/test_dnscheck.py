"""DNS checks (dnspython) against a loopback dnslib server serving good and broken zones; rotation."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.devserver.standins.dns import silent_socket
from comms.devserver.standins.http_receiver import Receiver
from delivery.deliverability import dnscheck
from delivery.deliverability.domains import sending_domain_create, sending_domain_records, sending_domain_rotate
from delivery.deliverability.models import DkimKey, DomainCheck
from delivery.deliverability.monitor import sending_domain_check, sending_domains_check_all
from tests.delivery.deliverability_support import _fresh_keys, dns_server, publish  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def good(tenant, dns_server, settings):
    settings.COMMS_SPF_INCLUDES = ["relay.example.net"]
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    publish(dns_server, domain)
    dns_server.zones.add_txt("relay.example.net", "v=spf1 ip4:192.0.2.0/24 -all")
    dns_server.zones.add_mx("example.com", "mx.example.com")
    return domain


def _statuses(domain) -> dict[str, str]:
    return {name: r.status for name, r in dnscheck.domain_checks_run(domain).items()}


def test_good_zone_passes_every_check(good):
    results = dnscheck.domain_checks_run(good)
    assert {n: r.status for n, r in results.items()} == {"spf": "ok", "dkim": "ok", "dmarc": "ok", "mx": "ok",
                                                         "return_path": "ok"}
    assert results["spf"].extra["lookups"] == 1
    assert results["dmarc"].extra["policy"] == "none"


def test_spf_missing_include_or_missing_record_fails(good, dns_server):
    dns_server.zones.remove("example.com", "TXT")
    dns_server.zones.add_txt("example.com", "v=spf1 include:other.example -all")
    result = dnscheck.domain_checks_run(good)["spf"]
    assert result.status == "fail" and "include:relay.example.net" in result.detail
    dns_server.zones.remove("example.com", "TXT")
    assert _statuses(good)["spf"] == "fail"
    dns_server.zones.add_txt("example.com", "v=spf1 include:relay.example.net ~all")
    dns_server.zones.add_txt("example.com", "v=spf1 -all")
    assert "2 SPF records" in dnscheck.domain_checks_run(good)["spf"].detail


def test_spf_over_ten_lookups_fails(good, dns_server):
    dns_server.zones.remove("example.com", "TXT")
    nested = " ".join(f"include:n{i}.example.net" for i in range(6))
    dns_server.zones.add_txt("example.com", f"v=spf1 include:relay.example.net include:deep.example.net ~all")
    dns_server.zones.add_txt("deep.example.net", f"v=spf1 {nested} a mx -all")
    for i in range(6):
        dns_server.zones.add_txt(f"n{i}.example.net", "v=spf1 mx -all")
    result = dnscheck.domain_checks_run(good)["spf"]
    assert result.status == "fail" and result.extra["lookups"] == 16 and "RFC 7208" in result.detail


def test_dkim_wrong_key_or_missing_fails(good, dns_server):
    key = good.keys.get(algorithm="rsa")
    name = f"{key.selector}._domainkey.example.com"
    dns_server.zones.remove(name)
    assert _statuses(good)["dkim"] == "fail"
    other = good.keys.get(algorithm="ed25519")
    dns_server.zones.add_txt(name, f"v=DKIM1; k=rsa; p={other.public_key}")
    result = dnscheck.domain_checks_run(good)["dkim"]
    assert result.status == "fail" and "another key" in result.detail


def test_dmarc_missing_or_without_policy_fails_and_subdomain_falls_back(good, dns_server, tenant):
    dns_server.zones.remove("_dmarc.example.com")
    assert _statuses(good)["dmarc"] == "fail"
    dns_server.zones.add_txt("_dmarc.example.com", "v=DMARC1; rua=mailto:x@example.com")
    assert _statuses(good)["dmarc"] == "fail"
    dns_server.zones.remove("_dmarc.example.com")
    dns_server.zones.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s")
    sub = sending_domain_create(tenant=tenant, domain="mail.example.com", actor=None)
    result = dnscheck.domain_checks_run(sub)["dmarc"]
    assert result.status == "ok" and result.extra == {"policy": "reject", "adkim": "s", "aspf": "r",
                                                      "at": "example.com"}


def test_missing_mx_and_return_path_warn(good, dns_server):
    dns_server.zones.remove("example.com", "MX")
    dns_server.zones.remove("bounce.example.com", "MX")
    statuses = _statuses(good)
    assert statuses["mx"] == "warn" and statuses["return_path"] == "warn"


def test_return_path_cname_when_configured(good, dns_server, settings):
    settings.COMMS_RETURN_PATH_CNAME = "bounces.esp.example"
    assert _statuses(good)["return_path"] == "fail"
    record = [r for r in sending_domain_records(good) if r["type"] == "CNAME"][0]
    assert record["name"] == "bounce.example.com" and record["value"] == "bounces.esp.example."
    dns_server.zones.remove("bounce.example.com")
    dns_server.zones.add_cname("bounce.example.com", "bounces.esp.example")
    assert _statuses(good)["return_path"] == "ok"


def test_dns_timeout_is_unknown_never_a_crash(good, settings):
    sock, address = silent_socket()
    try:
        settings.COMMS_DNS_NAMESERVERS = [address]
        settings.COMMS_DNS_TIMEOUT = 0.3
        started = time.monotonic()
        check = sending_domain_check(domain=good)
        assert time.monotonic() - started < 2  # one timeout, not one per query (a dead DNS must not stall)
    finally:
        sock.close()
    assert check.status == "unknown"
    assert {r["status"] for r in check.results.values()} == {"unknown"}
    assert "Timeout" in check.results["spf"]["detail"] or "Lifetime" in check.results["spf"]["detail"]


def test_history_and_regression_alert_via_the_alert_webhook(good, dns_server, settings):
    receiver = Receiver()
    settings.COMMS_ALERT_WEBHOOK_URL = receiver.url + "/alerts"
    try:
        first = sending_domain_check(domain=good)
        assert first.status == "ok" and first.regressions == [] and receiver.requests == []
        dns_server.zones.remove("_dmarc.example.com")
        second = sending_domain_check(domain=good)
        assert second.regressions == ["dmarc"] and second.status == "fail"
        body = json.loads(receiver.requests[0]["body"])
        assert body["type"] == "deliverability.dns_regression" and body["key"] == "example.com"
        assert "dmarc" in body["checks"]
        third = sending_domain_check(domain=good)  # still failing: not a new regression
        assert third.regressions == [] and len(receiver.requests) == 1
    finally:
        receiver.close()
    assert DomainCheck.objects.filter(domain=good).count() == 3
    good.refresh_from_db()
    assert good.check_status == "fail" and good.checked_at is not None


def test_unknown_then_fail_is_not_a_regression(good, dns_server, settings):
    sending_domain_check(domain=good)
    sock, address = silent_socket()
    settings.COMMS_DNS_NAMESERVERS, settings.COMMS_DNS_TIMEOUT = [address], 0.2
    sending_domain_check(domain=good)
    sock.close()
    settings.COMMS_DNS_NAMESERVERS, settings.COMMS_DNS_TIMEOUT = [dns_server.nameserver], 2.0
    dns_server.zones.remove("_dmarc.example.com")
    assert sending_domain_check(domain=good).regressions == []


def test_rotation_overlap_new_key_signs_only_once_published(good, dns_server):
    old = {k.algorithm: k.selector for k in good.keys.filter(state="active")}
    fresh = sending_domain_rotate(domain=good, actor=None)
    assert {k.state for k in fresh} == {"pending"} and {k.selector for k in fresh}.isdisjoint(old.values())
    # Not yet published: the check says warn for the pending keys, the old keys still sign.
    check = sending_domain_check(domain=good)
    assert check.results["dkim"]["status"] == "warn"
    assert set(good.keys.filter(state="active").values_list("selector", flat=True)) == set(old.values())
    # Published: the next check activates them and starts the overlap of the old ones.
    publish(dns_server, good)
    assert sending_domain_check(domain=good).results["dkim"]["status"] == "ok"
    active = set(good.keys.filter(state="active").values_list("selector", flat=True))
    assert active == {k.selector for k in fresh}
    retiring = good.keys.filter(state="retiring")
    assert set(retiring.values_list("selector", flat=True)) == set(old.values())
    assert all(k.retire_at > timezone.now() + timedelta(hours=100) for k in retiring)
    records = {r.get("selector"): r for r in sending_domain_records(good)}
    assert all(sel in records and "keep until" in records[sel]["purpose"] for sel in old.values())
    DkimKey.objects.filter(state="retiring").update(retire_at=timezone.now() - timedelta(seconds=1))
    sending_domains_check_all()
    assert not good.keys.filter(state="retiring").exists()
    assert set(r.get("selector") for r in sending_domain_records(good)) >= active
    assert not set(r.get("selector") for r in sending_domain_records(good)) & set(old.values())
