"""`manage.py preferences_import prefs.csv [--tenant slug] [--atomic]`: CRM import, most restrictive wins."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from comms import errors
from comms.models import Tenant
from preferences.services import preferences_import


class Command(BaseCommand):
    help = "Import preferences from CSV (external_id,channel,category,enabled[,frequency]); opt-outs win."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file, or - for standard input")
        parser.add_argument("--tenant", default=Tenant.DEFAULT_SLUG)
        parser.add_argument("--atomic", action="store_true", help="Import nothing when any row is bad.")

    def handle(self, *args, path: str, tenant: str, atomic: bool, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant '{tenant}'.")
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8-sig").read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            report = preferences_import(tenant=tenant_obj, csv_text=text, atomic=atomic)
        except errors.CommsError as exc:
            for error in exc.details.get("errors", []):
                self.stderr.write(f"line {error['line']}: {error['error']}")
            raise CommandError(f"{exc.message} ({exc.details.get('bad_rows', 0)} bad rows)") from None
        for error in report.errors:
            self.stderr.write(f"line {error['line']}: {error['error']}")
        self.stdout.write(json.dumps({k: v for k, v in report.as_dict().items() if k != "errors"}))
        if report.errors:
            sys.exit(2)  # imported the good rows; the non-zero exit makes the bad ones hard to miss
