"""Re-encrypt every stored secret with the first key of COMMS_ENCRYPTION_KEY (see comms/crypto.py)."""

from django.core.management.base import BaseCommand

from comms.crypto import secrets_rotate


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        for label, count in secrets_rotate().items():
            self.stdout.write(f"{label}: {count} rows re-encrypted")
