"""`manage.py comms_compliance_selftest`: today's sample against the compliance rules; exit 1 on a failure
(so CI or a cron job can gate on it)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from comms.models import Tenant
from delivery.deliverability.selftest import compliance_selftest


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=int, default=None, help="Rows per channel (COMMS_SELFTEST_SAMPLE).")
        parser.add_argument("--tenant", default="", help="Tenant slug (default: every tenant).")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, sample=None, tenant="", as_json=False, **options):
        tenant_id = None
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"no tenant {tenant!r}")
            tenant_id = found.pk
        report = compliance_selftest(sample=sample, tenant_id=tenant_id)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"compliance self-test {report['date']}: sampled {report['sampled']}")
            for rule in report["rules"]:
                self.stdout.write(f"  {rule['status'].upper():8} {rule['rule']:18} {rule['checked']} checked, "
                                  f"{rule['failed']} failed — {rule['description']}")
                for example in rule["examples"]:
                    self.stdout.write(f"           {example['message_id']} {example['to']}: {example['problem']}")
        if not report["ok"]:
            raise SystemExit(1)

