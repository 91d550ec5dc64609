"""`manage.py comms_demo_domain`: the default tenant gets a sending domain for DEFAULT_FROM_EMAIL's domain,
with DKIM keys, unless it has one. `make run` calls it after the bootstrap, so the mail it sends to the
sink is DKIM-signed (and verifies against the records it prints) from the first message on.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from comms import errors
from comms.services import tenant_get_default
from delivery.deliverability.dkim import from_domain
from delivery.deliverability.domains import sending_domain_create, sending_domain_records
from delivery.deliverability.models import SendingDomain


class Command(BaseCommand):
    help = "Create the demo tenant's sending domain (DKIM keys) for DEFAULT_FROM_EMAIL if it has none."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the result as JSON.")

    def handle(self, *args, as_json: bool = False, **options):
        tenant = tenant_get_default()
        name = from_domain(settings.DEFAULT_FROM_EMAIL)
        domain = SendingDomain.objects.filter(tenant=tenant, domain=name).first()
        created = False
        if domain is None:
            try:
                domain = sending_domain_create(tenant=tenant, domain=name, actor=None)
                created = True
            except errors.CommsError as exc:  # e.g. a From domain that is not a domain ("localhost")
                self.stdout.write(json.dumps({"domain": name, "error": exc.message}) if as_json else
                                  f"no sending domain for {name!r}: {exc.message}")
                return
        selectors = sorted(k.selector for k in domain.keys.filter(state="active"))
        result = {"domain": domain.domain, "created": created, "selectors": selectors,
                  "records": len(sending_domain_records(domain))}
        self.stdout.write(json.dumps(result) if as_json else
                          f"sending domain {domain.domain}: DKIM selectors {', '.join(selectors)}"
                          f"{' (created)' if created else ''}")
