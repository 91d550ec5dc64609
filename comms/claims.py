"""The one way beat jobs take due rows: ``FOR UPDATE SKIP LOCKED`` inside one transaction.

Many workers may run the same job at once (beat on several hosts, a slow run overlapping the next):
each takes only rows no other run holds, so a row is handled once, and nobody waits on a lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import transaction
from django.db.models import Model, QuerySet


@contextmanager
def due_rows(queryset: QuerySet, *, now: datetime, limit: int,
             due_field: str = "due_at") -> Iterator[list[Model]]:
    """Yield up to ``limit`` rows of ``queryset`` due by ``now`` (oldest first), locked until the block ends.

    The caller updates the rows inside the ``with`` block; the locks (and the changes) commit when it
    exits. Only the rows themselves are locked (``of=("self",)``), not the rows of joined tables.
    """
    with transaction.atomic():
        yield list(queryset.select_for_update(skip_locked=True, of=("self",))
                   .filter(**{f"{due_field}__lte": now}).order_by(due_field)[:limit])
