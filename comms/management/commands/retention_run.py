"""Run retention now: remove (and archive, when COMMS_ARCHIVE_BUCKET is set) every kind's expired rows.

    manage.py retention_run [--dry-run] [--kind messages --kind audit] [--no-archive]

--dry-run counts what would go and deletes nothing. Exits 1 with COMMS_ARCHIVE_UNAVAILABLE when
archiving is on and the storage cannot be written (nothing unarchived was deleted).
"""

from django.core.management.base import BaseCommand, CommandError

from comms.errors import CommsError
from comms.retention import retention_run


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be removed; delete nothing")
        parser.add_argument("--kind", action="append", dest="kinds", help="only this kind (repeatable)")
        parser.add_argument("--no-archive", action="store_true", help="remove without archiving even if configured")
        parser.add_argument("--batch", type=int, default=None, help="rows per batch (COMMS_RETENTION_BATCH)")
        parser.add_argument("--pause", type=float, default=None, help="seconds between batches")

    def handle(self, *args, dry_run=False, kinds=None, no_archive=False, batch=None, pause=None, **options):
        try:
            results = retention_run(dry_run=dry_run, kinds=kinds, archive=not no_archive, batch=batch, pause=pause,
                                    actor="manage.py retention_run")
        except CommsError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.details}") from exc
        verb = "would remove" if dry_run else "removed"
        for r in results:
            extra = "".join(f", {n} from {t}" for t, n in r.children.items())
            archived = f", archived {r.archived}" if r.archived else ""
            self.stdout.write(f"{r.kind}: {verb} {r.removed}{extra}{archived} ({r.batches} batches, {r.seconds:.1f} s)")
