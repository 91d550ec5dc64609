"""Create the VAPID key pair for Web Push once (RFC 8292), or rotate / re-encrypt it.

Without options it creates the pair when the key file (WEBPUSH_VAPID_FILE, default var/vapid.json) is
missing and prints the public key; `make run` calls it on every start, so it never replaces a pair.
--rotate makes a new pair: every existing browser subscription was made with the old public key and
will be refused (403) by the push services, so users must subscribe again (docs/operations.md).
--reencrypt writes the private key again with the newest COMMS_ENCRYPTION_KEY (after a key rotation).
"""

from django.core.management.base import BaseCommand

from comms import crypto, webpush


class Command(BaseCommand):
    help = __doc__.splitlines()[0]
    requires_system_checks: list = []  # it creates what the check delivery.E002 asks for

    def add_arguments(self, parser):
        parser.add_argument("--rotate", action="store_true", help="replace the pair (orphans every subscription)")
        parser.add_argument("--reencrypt", action="store_true", help="re-encrypt the private key with the newest key")

    def handle(self, *args, rotate: bool = False, reencrypt: bool = False, **options):
        path = webpush.vapid_path()
        if reencrypt and path.exists():
            import json

            data = json.loads(path.read_text())
            data["private_key_encrypted"] = crypto.rotate_token(data["private_key_encrypted"])
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.chmod(0o600)
            tmp.replace(path)
            self.stdout.write(f"re-encrypted {path}")
        public, created = webpush.vapid_generate(path, replace=rotate)
        verb = "rotated" if rotate else ("created" if created else "kept")
        self.stdout.write(f"VAPID key pair {verb} in {path}\npublic key: {public}")
