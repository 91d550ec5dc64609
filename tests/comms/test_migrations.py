"""Every model change has its migration, and the migration graph has one leaf per app.

Several lines of work add migrations to the same apps; a missing migration or two leaves would
only show up on an operator's `migrate`.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}")


def test_one_leaf_per_app():
    assert MigrationLoader(connection).detect_conflicts() == {}
