"""Gmail/Yahoo bulk-sender readiness from a stored check and the 7-day spam rate."""

from __future__ import annotations

import pytest

from delivery.deliverability.domains import sending_domain_create
from delivery.deliverability.models import DomainCheck
from delivery.deliverability.readiness import domain_readiness, ready

pytestmark = pytest.mark.django_db


def _check(domain, **statuses):
    results = {n: {"status": statuses.get(n, "ok"), "detail": f"{n} detail"} for n in
               ("spf", "dkim", "dmarc", "mx", "return_path")}
    results["dmarc"]["detail"] = "p=none, adkim=r, aspf=r"
    return DomainCheck.objects.create(domain=domain, status="ok", results=results)


def test_ready_when_authenticated_and_spam_under_the_limit(tenant):
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    reqs = {r.name: r for r in domain_readiness(domain, _check(domain), spam=(1, 2000))}
    assert reqs["Spam rate under 0.3 %"].status == "ok" and "0.050 %" in reqs["Spam rate under 0.3 %"].detail
    assert ready(list(reqs.values()))
    warn = {r.name: r for r in domain_readiness(domain, _check(domain), spam=(4, 2000))}
    assert warn["Spam rate under 0.3 %"].status == "warn" and ready(list(warn.values()))


@pytest.mark.parametrize("statuses, spam, failing", [
    ({"dkim": "fail"}, (0, 100), {"SPF and DKIM", "DMARC alignment"}),
    ({"dmarc": "fail"}, (0, 100), {"DMARC p=none or stricter", "DMARC alignment"}),
    ({}, (7, 2000), {"Spam rate under 0.3 %"}),
])
def test_not_ready(tenant, statuses, spam, failing):
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    reqs = domain_readiness(domain, _check(domain, **statuses), spam=spam)
    assert {r.name for r in reqs if r.status == "fail"} == failing and not ready(reqs)


def test_never_checked_is_unknown_not_ready(tenant):
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    reqs = domain_readiness(domain, None, spam=None)
    assert {r.status for r in reqs if r.name != "One-click unsubscribe"} == {"unknown"} and not ready(reqs)
