"""/console/deliverability/: each sending domain's DNS health and Gmail/Yahoo bulk-sender readiness.

The DNS results are the last stored check (beat runs them; the admin's "check now" action too), the
spam rate comes from tracking's 7-day complaint statistics per sending domain.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from comms.models import Tenant
from delivery.deliverability.dnscheck import CHECKS
from delivery.deliverability.models import SendingDomain
from delivery.deliverability.readiness import domain_readiness, ready
from tracking.models import DeliverabilityAlert
from tracking.services.alerts import rolling_rates

CHECK_LABELS = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC", "mx": "MX", "return_path": "Return path"}


def _spam_by_domain(now) -> dict[str, tuple[int, int]]:
    return {r.key: (r.complaints, r.sent) for r in rolling_rates(now=now)
            if r.subject == DeliverabilityAlert.Subject.SENDING_DOMAIN}


def _spam_for(domain: str, spam: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """The domain's and its subdomains' complaints and sends (From on mail.example.com counts for example.com)."""
    rows = [v for k, v in spam.items() if k == domain or k.endswith("." + domain)]
    return (sum(c for c, _ in rows), sum(s for _, s in rows)) if rows else None


@staff_member_required
@permission_required("delivery.view_sendingdomain", raise_exception=True)
def deliverability(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
    tenant_id = request.GET.get("tenant") or None
    if tenant_id and tenant_id not in {str(t) for t, _ in tenants}:
        tenant_id = None
    domains = SendingDomain.objects.select_related("tenant").order_by("tenant__slug", "domain")
    if tenant_id:
        domains = domains.filter(tenant_id=tenant_id)
    spam = _spam_by_domain(now)
    rows = []
    for domain in domains:
        check = domain.checks.first()
        requirements = domain_readiness(domain, check, spam=_spam_for(domain.domain, spam))
        rows.append({
            "domain": domain, "check": check, "ready": ready(requirements), "requirements": requirements,
            "checks": [{"label": CHECK_LABELS[n], **(check.results.get(n, {}) if check else
                                                    {"status": "unknown", "detail": "not checked yet"})}
                       for n in CHECKS],
            "href": reverse("admin:delivery_sendingdomain_change", args=[domain.pk]),
        })
    return render(request, "admin_console/deliverability.html", {
        "rows": rows, "tenants": tenants, "tenant_id": tenant_id, "now": now, "title": "Deliverability",
        "add_href": reverse("admin:delivery_sendingdomain_add")})
