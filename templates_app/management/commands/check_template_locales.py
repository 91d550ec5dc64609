"""Fail (exit 1) when an active template lacks a locale its tenant requires, listing each gap per
channel; exit 0 when none is missing. Meant for CI: localization debt breaks the build (seed 001).

The tenant's requirement is ``Tenant.required_locales`` (admin: Tenants). A required "de-AT" is met
by a "de-AT" or a "de" locale with content for the channel, as a recipient in de-AT would get it.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from comms.models import Tenant
from templates_app.locales import locale_debt


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="check one tenant (its slug); default: every tenant")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the gaps as one JSON array")

    def handle(self, *args, tenant: str | None = None, as_json: bool = False, **options):
        scope = None
        if tenant:
            scope = Tenant.objects.filter(slug=tenant).first()
            if scope is None:
                raise CommandError(f"No tenant with slug {tenant!r}.", returncode=2)
        debt = locale_debt(tenant=scope)
        if as_json:
            self.stdout.write(json.dumps(debt))
        else:
            for gap in debt:
                self.stdout.write(f"{gap['tenant']}/{gap['template']} v{gap['version']}: {gap['channel']} "
                                  f"lacks required locale {gap['locale']}")
        if debt:
            templates = len({(g["tenant"], g["template"]) for g in debt})
            raise CommandError(f"{len(debt)} required locale(s) missing in {templates} active template(s).")
        if not as_json:
            self.stdout.write(self.style.SUCCESS("Every active template has its tenant's required locales."))

