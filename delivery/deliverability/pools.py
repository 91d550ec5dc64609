"""Pools (streams): which route a class of mail takes (seed 003's `ip_pool`).

A pool is not a second router: delivery.routing.provider_specs takes the pool's name and narrows
its usual provider list to the pool's providers (and binds the pool's SMTP source address). A
message's pool is decided at enqueue (an admin's explicit choice, else the pool of its category)
and recorded on the row, so dashboards count sends per pool.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count

from comms import errors
from comms.audit import audit_record
from delivery.deliverability.models_pools import Pool
from delivery.models import Message

_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, list[Pool]]] = {}


def _all() -> list[Pool]:
    """Every pool, cached briefly per process (a handful of rows, read on every claim)."""
    now = time.monotonic()
    hit = _cache.get("all")
    if hit and hit[0] > now:
        return hit[1]
    pools = list(Pool.objects.all())
    _cache["all"] = (now + _CACHE_SECONDS, pools)
    return pools


def clear_cache() -> None:
    _cache.clear()


def pool_named(*, tenant_id: Any, channel: str, name: str) -> Pool | None:
    """The tenant's pool of that name, else the global one."""
    found = [p for p in _all() if p.name == name and p.channel == channel and p.tenant_id in (None, tenant_id)]
    found.sort(key=lambda p: p.tenant_id is None)
    return found[0] if found else None


def pool_for(*, tenant_id: Any, channel: str, category: str) -> Pool | None:
    """The pool a category's mail takes by default: the tenant's, else a global one."""
    found = [p for p in _all() if p.channel == channel and category in p.categories
             and p.tenant_id in (None, tenant_id)]
    found.sort(key=lambda p: (p.tenant_id is None, p.name))
    return found[0] if found else None


def pool_resolve(*, tenant_id: Any, channel: str, category: str, override: str = "") -> str:
    """The pool name to record on a new message: the override (must exist), else the category's."""
    if override:
        if pool_named(tenant_id=tenant_id, channel=channel, name=override) is None:
            raise errors.PoolUnknown(f"No {channel} pool named '{override}'.", details={"pool": override})
        return override
    pool = pool_for(tenant_id=tenant_id, channel=channel, category=category)
    return pool.name if pool else ""


def pool_of(message: Any) -> str:
    """The pool a claimed row takes: recorded at enqueue, else (rows written by other paths) its category's."""
    if message.pool:
        return message.pool
    pool = pool_for(tenant_id=message.tenant_id, channel=message.channel, category=message.category)
    return pool.name if pool else ""


def pool_override_check(*, principal: Any, tenant_id: Any, channel: str, name: str) -> str:
    """An explicit per-message pool: admin-scoped keys only (it bypasses the category's stream)."""
    if not name:
        return ""
    if not principal.has_scope("admin"):
        raise errors.PoolForbidden(details={"pool": name, "required_scope": "admin"})
    return pool_resolve(tenant_id=tenant_id, channel=channel, category="", override=name)


def pool_create(*, name: str, channel: str = "email", tenant: Any = None, providers: list[str] | None = None,
                source_address: str | None = None, categories: list[str] | None = None, description: str = "",
                actor: Any = None) -> Pool:
    """Create a pool; typed errors for a bad name or a duplicate."""
    if not name or len(name) > 50 or not name.replace("-", "").replace("_", "").isalnum():
        raise errors.ValidationFailed("A pool name is 1-50 letters, digits, '-' or '_'.", details={"name": name})
    if Pool.objects.filter(tenant=tenant, channel=channel, name=name).exists():
        raise errors.ValidationFailed(f"A {channel} pool named '{name}' exists.", details={"name": name})
    pool = Pool(tenant=tenant, name=name, channel=channel, providers=list(providers or []),
                source_address=source_address or None, categories=list(categories or []), description=description)
    try:
        pool.full_clean(validate_unique=False, validate_constraints=False)
    except DjangoValidationError as exc:
        raise errors.ValidationFailed("The pool is not valid.", details=exc.message_dict) from None
    pool.save()
    audit_record(actor=actor, action="pool.create", target=pool,
                 diff={"providers": pool.providers, "categories": pool.categories,
                       "source_address": pool.source_address})
    clear_cache()
    return pool


def pool_sends(*, since: datetime, tenant_id: Any = None) -> list[dict]:
    """Messages per pool and status created since `since` (the dashboard's sends per pool).

    Bounded by the primary key: ids are UUIDv7, so "created since" is an id range (no extra index).
    """
    floor = uuid.UUID(int=int(since.timestamp() * 1000) << 80)
    rows = Message.objects.filter(id__gte=floor)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    table: dict[tuple[str, str], dict] = {}
    for pool, channel, status, n in (rows.values_list("pool", "channel", "status").annotate(n=Count("id"))
                                     .order_by("pool", "channel")):
        row = table.setdefault((pool, channel), {"pool": pool, "channel": channel, "total": 0, "by_status": {}})
        row["by_status"][status] = n
        row["total"] += n
    return list(table.values())
