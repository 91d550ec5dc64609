"""The periodic DNS check of every sending domain: history, key promotion, regression alerts.

A check that goes from ok to fail (a DKIM record deleted, an SPF include dropped) raises an alert the
way the deliverability rate alerts do: a warning log line and the optional ops webhook
(COMMS_ALERT_WEBHOOK_URL), type ``deliverability.dns_regression``. "unknown" (DNS did not answer) is
never a regression: the next check decides.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from comms.audit import audit_record
from delivery.deliverability import dkim, dnscheck
from delivery.deliverability.domains import keys_promote
from delivery.deliverability.models import DomainCheck, SendingDomain

log = logging.getLogger(__name__)


def _notify(domain: SendingDomain, regressions: list[str], check: DomainCheck) -> None:
    details = {name: check.results[name]["detail"] for name in regressions}
    log.warning("deliverability alert: DNS check regressed for %s: %s", domain.domain,
                "; ".join(f"{k}: {v}" for k, v in details.items()))
    url = settings.COMMS_ALERT_WEBHOOK_URL
    if not url:
        return
    body = json.dumps({"type": "deliverability.dns_regression", "subject": "sending_domain", "key": domain.domain,
                       "tenant": str(domain.tenant_id), "checks": details}).encode()
    try:  # an operator's URL from settings; a failure must not stop the check
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}),
                               timeout=5).close()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


def sending_domain_check(*, domain: SendingDomain, actor: Any = None,
                         lookup: dnscheck.Lookup | None = None) -> DomainCheck:
    """Run every DNS check of `domain` (outside any transaction: DNS may take seconds), store the result,
    activate pending keys that are now published, and alert on ok → fail."""
    results = dnscheck.domain_checks_run(domain, lookup=lookup)
    stored = dnscheck.as_json(results)
    status = dnscheck.worst(r.status for r in results.values())
    previous = DomainCheck.objects.filter(domain=domain).first()
    regressions = [name for name, r in results.items() if previous and r.status == dnscheck.FAIL
                   and previous.results.get(name, {}).get("status") == dnscheck.OK]
    with transaction.atomic():
        check = DomainCheck.objects.create(domain=domain, status=status, results=stored, regressions=regressions)
        SendingDomain.objects.filter(pk=domain.pk).update(check_status=status, checked_at=check.checked_at)
        promoted = keys_promote(domain=domain, published=set(results["dkim"].extra.get("published", [])))
        if actor is not None:
            audit_record(actor=actor, action="sending_domain.checked", target=domain, tenant=domain.tenant,
                         diff={"status": status})
    if promoted:
        dkim.cache_clear()
    if regressions:
        _notify(domain, regressions, check)
    return check


def sending_domains_check_all() -> dict[str, str]:
    """Beat: every sending domain, one after the other (a slow DNS answer costs only this task's time)."""
    out = {}
    for domain in SendingDomain.objects.select_related("tenant"):
        out[domain.domain] = sending_domain_check(domain=domain).status
    DomainCheck.objects.filter(checked_at__lt=timezone.now() - timedelta(days=90)).delete()
    return out
