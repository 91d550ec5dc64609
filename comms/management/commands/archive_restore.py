"""Restore one day of an archived kind into a scratch schema, for an audit.

    manage.py archive_restore --kind messages --date 2026-03-01 --schema audit_2026_12 [--tenant <id>]

Each table of the archive (delivery_message, delivery_deliverylog, …) becomes <schema>.<table>, with
the live table's columns and no constraints, triggers or indexes. Every part is checked against its
manifest's sha256 first (COMMS_ARCHIVE_CORRUPT otherwise) and all of it is inserted in one
transaction. Drop the schema when the audit is done: DROP SCHEMA audit_2026_12 CASCADE.
"""

import json
import re
from datetime import date as Date

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from comms.archive import archive_from_settings
from comms.errors import CommsError
from comms.retention_policy import NEVER_DELETED, Kind

SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
BATCH = 2000


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=[k for k in Kind.values if k not in NEVER_DELETED])
        parser.add_argument("--date", required=True, help="the day the rows belong to, YYYY-MM-DD (UTC)")
        parser.add_argument("--schema", required=True, help="scratch schema to restore into (created if missing)")
        parser.add_argument("--tenant", default=None, help="only this tenant's archive (its id)")

    def handle(self, *args, kind, date: str, schema: str, tenant=None, **options):
        if not SCHEMA.match(schema) or schema in ("public", "pg_catalog", "information_schema"):
            raise CommandError("--schema: lower-case letters, digits and _, not a system or the live schema")
        try:
            day = Date.fromisoformat(date).isoformat()
        except ValueError as exc:
            raise CommandError("--date: YYYY-MM-DD") from exc
        archive = archive_from_settings()
        if archive is None:
            raise CommandError("no archive configured (COMMS_ARCHIVE_BUCKET)")
        try:
            manifests = archive.manifests(kind=kind, day=day, tenant=tenant)
            if not manifests:
                raise CommandError(f"no archive of {kind} for {day}")
            counts = self._restore(archive, manifests, schema)
        except CommsError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.details}") from exc
        for table, n in counts.items():
            self.stdout.write(f"{schema}.{table}: {n} rows")

    @staticmethod
    def _restore(archive, manifests: list[dict], schema: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        pending: dict[str, list] = {}
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

            def flush(table: str) -> None:
                rows = pending.pop(table, [])
                if rows:
                    cur.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM '
                                f'jsonb_populate_recordset(NULL::"{schema}"."{table}", %s::jsonb)',
                                [json.dumps(rows)])

            for manifest in manifests:
                for line in archive.read(manifest):
                    table = line["table"]
                    if not re.match(r"^[a-z_][a-z0-9_]*$", table):
                        raise CommandError(f"unexpected table name in the archive: {table!r}")
                    if table not in counts:
                        cur.execute(f'CREATE TABLE IF NOT EXISTS "{schema}"."{table}" (LIKE public."{table}")')
                        counts[table] = 0
                    pending.setdefault(table, []).append(line["row"])
                    counts[table] += 1
                    if len(pending[table]) >= BATCH:
                        flush(table)
            for table in list(pending):
                flush(table)
        return counts
