"""Retention: how long each kind of data is kept (per tenant), and the run that removes what expired.

The kernel imports no other app, so each app *describes* how its own kind is pruned with a
``Pruner`` registered in its ``AppConfig.ready()`` (like the erasers in ``comms.erasure``): the
table, its key, the time that ages a row, which rows may go (a message still queued or retrying
never may) and the child tables that go with a row. The run here is generic SQL over that
description, so no app's internals are imported.

Removal is batched deletes, not partitions (docs/operations.md, "Retention", has the measurements):
keyset batches of ``COMMS_RETENTION_BATCH`` rows in key order, each batch its own short
transaction holding row locks only on the rows it removes (``FOR UPDATE SKIP LOCKED``: a row a
worker holds is skipped, never waited for), with a pause between batches. Autovacuum reclaims the
space for new rows; the table does not grow.

With archiving on, a batch's rows (and their children) are written to object storage *inside* the
batch's transaction, before its DELETE: storage unreachable raises ``ArchiveUnavailable``, the
transaction rolls back and nothing unarchived is deleted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from comms.archive import archive_from_settings
from comms.audit import audit_record
from comms.errors import ArchiveUnavailable, RetentionNotAllowed
from comms.models import RetentionPolicy, RetentionRun, Tenant
from comms.retention_policy import DEFAULT_DAYS, NEVER_DELETED, Kind, Pruner, pruners, retention_days_validate

class Archive(Protocol):
    def put_batch(self, *, kind: str, run_id: str, groups: dict[tuple[str, str], list[dict]]) -> int: ...


@dataclass
class KindResult:
    kind: str
    removed: int = 0
    children: dict[str, int] = field(default_factory=dict)
    archived: int = 0
    batches: int = 0
    seconds: float = 0.0
    error: str = ""


@transaction.atomic
def retention_policy_set(*, tenant: Tenant | None, kind: str, days: int, actor: Any) -> RetentionPolicy:
    """Keep `kind` for `days` for `tenant` (None: everyone without their own row). Typed errors:
    ``COMMS_RETENTION_NOT_ALLOWED`` (consent), ``COMMS_RETENTION_BELOW_MINIMUM``, ``COMMS_RETENTION_UNKNOWN_KIND``."""
    retention_days_validate(kind=kind, days=days)
    policy = RetentionPolicy.objects.filter(tenant=tenant, kind=kind).select_for_update().first()
    before = policy.days if policy else None
    if policy is None:
        policy = RetentionPolicy.objects.create(tenant=tenant, kind=kind, days=days)
    else:
        policy.days, policy.updated_at = days, timezone.now()
        policy.save(update_fields=["days", "updated_at"])
    audit_record(actor=actor, action="retention.policy_set", target=policy, tenant=tenant,
                 diff={"days": [before, days]})
    return policy


def policy_days(*, kind: str) -> tuple[int, dict[str, int]]:
    """(deployment-wide days, {tenant id: days}) for `kind`: a tenant's row beats the global row beats
    the default."""
    default = DEFAULT_DAYS[Kind(kind)]
    per_tenant: dict[str, int] = {}
    for tenant_id, days in RetentionPolicy.objects.filter(kind=kind).values_list("tenant_id", "days"):
        if tenant_id is None:
            default = days
        else:
            per_tenant[str(tenant_id)] = days
    return default, per_tenant


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The smallest uuid7 of millisecond `at`: every uuid7 made before `at` sorts below it (RFC 9562 §5.7)."""
    return uuid.UUID(int=int(at.timestamp() * 1000) << 80)


def _key_bound(p: Pruner, cutoff: datetime) -> Any:
    """A key above every row older than `cutoff`. uuid7: its time prefix. bigint: a binary search over
    the key (rows are inserted in time order, so time rises with the key; a row that breaks the order
    is only kept longer, never removed early, since each row's own time is checked too)."""
    if not p.key_is_ordered:
        return None
    if p.key_is_uuid7:
        return uuid7_floor(cutoff)
    with connection.cursor() as cur:
        cur.execute(f"SELECT min({p.key}), max({p.key}) FROM {p.table}")
        lo, hi = cur.fetchone()
        if lo is None:
            return 0
        hi += 1
        while lo < hi:  # first key whose row is not older than the cutoff
            mid = (lo + hi) // 2
            cur.execute(f"SELECT {p.time_sql} FROM {p.table} t WHERE {p.key} >= %s ORDER BY {p.key} LIMIT 1", [mid])
            row = cur.fetchone()
            if row is None or row[0] is None or row[0] >= cutoff:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _select_sql(p: Pruner, *, full: bool, after: bool) -> str:
    tenant = f"t.{p.tenant_column}::text" if p.tenant_column else "''"
    join = (f"LEFT JOIN unnest(%(tids)s::text[], %(cuts)s::timestamptz[]) AS c(tenant_id, cutoff) "
            f"ON c.tenant_id = {tenant}") if p.tenant_column else ""
    cutoff = "coalesce(c.cutoff, %(default)s)" if p.tenant_column else "%(default)s"
    return (f"SELECT t.{p.key}, {tenant}, {p.time_sql}{', to_jsonb(t)::text' if full else ''} FROM {p.table} t {join} "
            f"WHERE {f't.{p.key} < %(bound)s' if p.key_is_ordered else 'TRUE'}"
            f"{f' AND t.{p.key} > %(after)s' if after else ''} "
            f"AND {p.time_sql} < {cutoff} AND ({p.removable_sql}) "
            f"ORDER BY t.{p.key} LIMIT %(limit)s FOR UPDATE OF t SKIP LOCKED")


def _prune_kind(p: Pruner, out: KindResult, *, now: datetime, dry_run: bool, archive: Archive | None, run_id: str,
                batch: int, pause: float) -> KindResult:
    """Fill `out` as batches commit, so a run stopped by the archive still reports what it removed."""
    started = time.monotonic()
    default_days, per_tenant = policy_days(kind=p.kind)
    if not p.tenant_column:
        per_tenant = {}
    cutoffs = {t: now - timedelta(days=d) for t, d in per_tenant.items()}
    default_cutoff = now - timedelta(days=default_days)
    bound = _key_bound(p, max([default_cutoff, *cutoffs.values()]))
    params = {"tids": list(cutoffs), "cuts": list(cutoffs.values()), "default": default_cutoff, "bound": bound,
              "limit": batch}
    if dry_run:
        with connection.cursor() as cur:
            sql = _select_sql(p, full=False, after=False).replace(" LIMIT %(limit)s FOR UPDATE OF t SKIP LOCKED", "")
            cur.execute(f"SELECT count(*) FROM ({sql}) s", params)
            out.removed = cur.fetchone()[0]
        out.seconds = time.monotonic() - started
        return out
    after = None
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_select_sql(p, full=archive is not None, after=after is not None), {**params, "after": after})
            rows = cur.fetchall()
            if not rows:
                break
            keys = [r[0] for r in rows]
            if archive is not None:
                out.archived += _archive_batch(p, cur, rows, keys, archive=archive, run_id=run_id)
            if p.delete_flag:
                cur.execute("SELECT set_config(%s, 'on', true)", [p.delete_flag])
            for child in p.children:
                cur.execute(f"DELETE FROM {child.table} c {child.using()} WHERE {child.link()}{child.parent()} = ANY(%s)",
                            [keys])
                out.children[child.table] = out.children.get(child.table, 0) + cur.rowcount
            cur.execute(f"DELETE FROM {p.table} WHERE {p.key} = ANY(%s)", [keys])
            out.removed += cur.rowcount
        out.batches += 1
        after = keys[-1]
        if pause:
            time.sleep(pause)
    out.seconds = time.monotonic() - started
    return out


def _archive_batch(p: Pruner, cur: Any, rows: list, keys: list, *, archive: Archive, run_id: str) -> int:
    """Group the batch's rows (and each child row with its parent) by (tenant, day); write them."""
    groups: dict[tuple[str, str], list[dict]] = {}
    where: dict[Any, tuple[str, str]] = {}
    for key, tenant, at, row in rows:
        group = (tenant or "_", at.date().isoformat())
        where[key] = group
        groups.setdefault(group, []).append({"table": p.table, "at": at.isoformat(), "row": json.loads(row)})
    for child in p.children:
        cur.execute(f"SELECT {child.parent()}, to_jsonb(c)::text FROM {child.table} c {child.join()} "
                    f"WHERE {child.parent()} = ANY(%s)", [keys])
        for parent, row in cur.fetchall():
            groups[where[parent]].append({"table": child.table, "row": json.loads(row)})
    return archive.put_batch(kind=p.kind, run_id=run_id, groups=groups)


def retention_run(*, dry_run: bool = False, kinds: Iterable[str] | None = None, now: datetime | None = None,
                  archive: Archive | None | bool = True, batch: int | None = None,
                  pause: float | None = None, actor: Any = None) -> list[KindResult]:
    """Remove (and, when configured, archive first) every registered kind's expired rows.

    Records one ``RetentionRun`` per kind. `archive=True` means "as configured" (``COMMS_ARCHIVE_BUCKET``).
    An ``ArchiveUnavailable`` is recorded and re-raised: the caller (beat, the command) retries later,
    and the batch that could not be archived was rolled back."""
    now = now or timezone.now()
    if archive is True:
        archive = archive_from_settings()
    elif archive is False:
        archive = None
    batch = batch or settings.COMMS_RETENTION_BATCH
    pause = settings.COMMS_RETENTION_PAUSE_SECONDS if pause is None else pause
    wanted = set(kinds) if kinds else None
    if wanted and wanted & NEVER_DELETED:
        raise RetentionNotAllowed(details={"kind": sorted(wanted & NEVER_DELETED)[0]})
    run_id = now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
    results = []
    for p in pruners():
        if wanted is not None and p.kind not in wanted:
            continue
        record = RetentionRun.objects.create(kind=p.kind, started_at=timezone.now(), dry_run=dry_run,
                                             archived_to=getattr(archive, "location", ""))
        result = KindResult(kind=p.kind)
        try:
            _prune_kind(p, result, now=now, dry_run=dry_run, archive=archive, run_id=run_id, batch=batch, pause=pause)
        except ArchiveUnavailable as exc:
            RetentionRun.objects.filter(pk=record.pk).update(
                finished_at=timezone.now(), status="failed", error=f"{exc.code}: {exc.message} {exc.details}",
                removed=result.removed, archived=result.archived, children_removed=result.children,
                batches=result.batches)
            raise
        RetentionRun.objects.filter(pk=record.pk).update(
            finished_at=timezone.now(), status="ok", removed=result.removed, archived=result.archived,
            children_removed=result.children, batches=result.batches)
        if not dry_run and result.removed:
            audit_record(actor=actor, action="retention.run", target=record,
                         diff={"removed": result.removed, "archived": result.archived, **result.children})
        results.append(result)
    return results
