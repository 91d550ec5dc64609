"""Fixtures of the many-node and pooler tests."""

from __future__ import annotations

import pytest

from comms.devserver.pgbouncer import PgBouncer
from tests.conftest import worker_env


@pytest.fixture
def pgbouncer(tmp_path):
    """A real PgBouncer (transaction pooling, loopback, free port) in front of the test database."""
    bouncer = PgBouncer(tmp_path / "pgbouncer", database_url=worker_env()["DATABASE_URL"], default_pool_size=8)
    yield bouncer
    bouncer.stop()
