"""Idempotent first-run setup: migrate, static files, default tenant, admin user, an API key.

Credentials are generated once and kept in var/credentials.json (mode 0600) so a second
`make run` prints the same ones. The API key is stored hashed in the database; this file is the
only place its raw value lives, for the local operator's convenience.

It lives in the console app, not the kernel, because it repairs the console's roles: the kernel
imports no other app.
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from admin_console.roles import roles_ensure
from comms.auth import hash_key, split_key
from comms.models import ApiKey, Scope
from comms.services import api_key_create, tenant_get_default


class Command(BaseCommand):
    help = "Prepare a fresh or existing installation (safe to run on every start)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the credentials as JSON on the last line.")

    def handle(self, *args, as_json: bool = False, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        roles_ensure()
        path = settings.VAR_DIR / "credentials.json"
        creds = _load(path)
        tenant = tenant_get_default()
        user_model = get_user_model()
        creds.setdefault("admin_user", "admin")
        creds.setdefault("admin_password", secrets.token_urlsafe(12))
        user, _ = user_model.objects.get_or_create(username=creds["admin_user"],
                                                   defaults={"is_staff": True, "is_superuser": True})
        if not user.check_password(creds["admin_password"]):
            user.set_password(creds["admin_password"])
            user.is_staff = user.is_superuser = True
            user.save()
        raw = creds.get("api_key", "")
        prefix = split_key(raw) if raw else None
        valid = prefix and ApiKey.objects.filter(prefix=prefix, key_hash=hash_key(raw), revoked_at__isnull=True).exists()
        if not valid:
            _, creds["api_key"] = api_key_create(tenant=tenant, name="make run default key",
                                                 scopes=[Scope.ADMIN])
        path.write_text(_dumps(creds))
        path.chmod(0o600)
        if as_json:
            self.stdout.write(_dumps(creds).replace("\n", " "))
        else:
            self.stdout.write(f"admin user {creds['admin_user']} / {creds['admin_password']}; API key {creds['api_key']}")


def _load(path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _dumps(data) -> str:
    return json.dumps(data, indent=None)
