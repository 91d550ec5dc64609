"""Which providers serve a send, in failover order: ChannelProvider rows (per tenant, per category) first,
settings as the default."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from comms.provider_settings import settings_providers  # noqa: F401  (re-exported: routing's default chain)
from delivery.deliverability import pools
from delivery.models import ChannelProvider
from delivery.providers.base import Provider

_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Spec:
    name: str
    path: str
    config: dict[str, Any] = field(default_factory=dict, hash=False)
    rate: float | None = None  # messages per second
    daily: int | None = None  # messages per UTC day (the provider's quota)


_cache: dict[tuple[str, str, str, str], tuple[float, list[Spec]]] = {}


def provider_specs(*, tenant_id: Any, channel: str, category: str = "", pool: str = "") -> list[Spec]:
    """The providers for a send, in failover order; cached briefly per process.

    Tenant rows before global rows; rows restricted to the message's category before rows that
    serve every category; then the primary, then `order`. A row restricted to other categories is
    not used at all, so to keep marketing off the transactional provider, restrict that one too.

    A pool (delivery.deliverability.pools) narrows this list: a pool that names providers uses
    exactly those, in its order (its choice stands over the rows' own category restrictions); a
    pool with a source address binds the SMTP providers to it, as a provider of its own (its own
    breaker, rate limits and session pool, since it is another sending IP).
    """
    key = (str(tenant_id), channel, category, pool)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    stream = pools.pool_named(tenant_id=tenant_id, channel=channel, name=pool) if pool else None
    rank = {name: i for i, name in enumerate(stream.providers)} if stream and stream.providers else None
    rows = ChannelProvider.objects.filter(channel=channel).exclude(status=ChannelProvider.State.DISABLED)
    rows = [r for r in rows if r.tenant_id in (None, tenant_id)]
    if rank is not None:
        rows = sorted((r for r in rows if r.name in rank), key=lambda r: (rank[r.name], r.tenant_id is None))
    else:
        rows = [r for r in rows if not r.categories or category in r.categories or not category]
        rows.sort(key=lambda r: (r.tenant_id is None, not r.categories, not r.is_primary, r.order))
    specs = [Spec(r.name, r.provider_class, {**r.options, **r.credentials}, r.rate_limit, r.daily_limit) for r in rows]
    if not specs:
        for path in [p for c, p in settings_providers() if c == channel]:  # the primary (or a chain), then failover
            name = import_string(path).name
            if name not in {s.name for s in specs} and (rank is None or name in rank):
                specs.append(Spec(name, path, {}, settings.COMMS_PROVIDER_RATE_LIMITS.get(name)))
    if stream is not None and stream.source_address:
        specs = [_bound(s, stream.name, stream.source_address) for s in specs]
    _cache[key] = (now + _CACHE_SECONDS, specs)
    return specs


def _bound(spec: Spec, pool: str, address: str) -> Spec:
    """An SMTP spec bound to a pool's local address (the sending IP); other vendors are unchanged."""
    if getattr(import_string(spec.path), "binds_source_address", False):
        return Spec(f"{spec.name}@{pool}", spec.path, {**spec.config, "source_address": address}, spec.rate,
                    spec.daily)
    return spec


def channel_available(*, tenant_id: Any, channel: str, category: str = "", pool: str = "") -> bool:
    return bool(provider_specs(tenant_id=tenant_id, channel=channel, category=category, pool=pool))


_instances: dict[tuple[str, str], tuple[dict, Provider]] = {}


def instance(spec: Spec) -> Provider:
    """The provider object for a spec, kept for the life of the process (its session too).

    A changed configuration replaces the instance (closing the old session).
    """
    key = (spec.name, spec.path)
    held = _instances.get(key)
    if held is not None and held[0] == spec.config:
        return held[1]
    if held is not None:
        held[1].close()
    provider = import_string(spec.path)(spec.config)
    _instances[key] = (spec.config, provider)
    return provider


def provider_for(*, tenant_id: Any, channel: str, category: str = "", pool: str = "") -> Provider | None:
    specs = provider_specs(tenant_id=tenant_id, channel=channel, category=category, pool=pool)
    return instance(specs[0]) if specs else None


def clear_cache() -> None:
    """Forget configuration and close every held provider session."""
    _cache.clear()
    pools.clear_cache()
    for _config, provider in _instances.values():
        provider.close()
    _instances.clear()
