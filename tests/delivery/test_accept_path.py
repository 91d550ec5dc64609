"""The accept path's shortcuts give exactly what the long way gave (hashes and stored values)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timezone as dt_timezone

import pytest
from django.db import connection
from psycopg.types.json import Jsonb

from delivery.models import Message
from delivery.services import SendSpec
from delivery.services.enqueue import _insert_plan

pytestmark = pytest.mark.django_db

SPEC = SendSpec(channel="email", to="a@example.com", subject="Hi", body="Hello", variables={"n": [1, {"x": "y"}]},
                priority=0, category="security", scheduled_for=datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc),
                metadata={"order": 7}, fallback=("sms", "push"))


def test_fingerprint_is_the_one_stored_before():
    """Idempotent replays compare against hashes already in the database: the JSON must not change."""
    # `pool` (issue 19) is left out while empty, so the hash of a request without one is unchanged.
    fields = {k: v for k, v in asdict(SPEC).items() if k != "pool"}
    old = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    assert SPEC.fingerprint() == old == "3fe6bccf4895eef7ced5cfd64e1999811125b627b0abcb780fe99382ec5d94ff"


def _plain(value):
    return ("jsonb", value.obj) if isinstance(value, Jsonb) else (type(value), value)


def test_insert_parameters_equal_djangos_preparation(tenant):
    """Values that skip get_db_prep_save are the ones it passes through unchanged."""
    now = datetime.now(dt_timezone.utc)
    message = Message(tenant=tenant, channel="email", priority=1, category="security", status="queued",
                      recipient_address="a@example.com", subject="s", body="b", variables={"a": 1},
                      metadata={"m": [1]}, idempotency_key="k", request_hash="h" * 64, next_attempt_at=now,
                      scheduled_for=None, created_at=now, updated_at=now, fallback_channels=["sms"])
    sql, plan = _insert_plan()
    fast = []
    for field, plain in plan:
        value = getattr(message, field.attname)
        fast.append(value if value is None and plain or type(value) in plain and not (
            type(value) is datetime and value.tzinfo is None) else field.get_db_prep_save(value, connection))
    django = [field.get_db_prep_save(getattr(message, field.attname), connection) for field, _ in plan]
    assert [_plain(v) for v in fast] == [_plain(v) for v in django]
    assert sum(1 for _, plain in plan if plain) >= 25  # most columns do take the shortcut
