"""Which provider serves a channel: ChannelProvider rows first, settings as the default."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from delivery.models import ChannelProvider
from delivery.providers.base import Provider

_CACHE_SECONDS = 10.0
_cache: dict[tuple[str, str], tuple[float, list[tuple[str, str, dict[str, Any]]]]] = {}


def provider_specs(*, tenant_id: Any, channel: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, dotted class path, config) in failover order; cached briefly per process."""
    key = (str(tenant_id), channel)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    rows = ChannelProvider.objects.filter(channel=channel).exclude(status=ChannelProvider.State.DISABLED)
    rows = [r for r in rows if r.tenant_id in (None, tenant_id)]
    rows.sort(key=lambda r: (r.tenant_id is None, not r.is_primary, r.order))
    specs = [(r.name, r.provider_class, {**r.options, **r.credentials}) for r in rows]
    if not specs and channel in settings.COMMS_CHANNEL_PROVIDERS:
        path = settings.COMMS_CHANNEL_PROVIDERS[channel]
        specs = [(import_string(path).name, path, {})]
    _cache[key] = (now + _CACHE_SECONDS, specs)
    return specs


def channel_available(*, tenant_id: Any, channel: str) -> bool:
    return bool(provider_specs(tenant_id=tenant_id, channel=channel))


_instances: dict[tuple[str, str], tuple[dict, Provider]] = {}


def provider_for(*, tenant_id: Any, channel: str) -> Provider | None:
    """The provider instance for a channel, kept for the life of the process (its session too).

    A changed configuration replaces the instance (closing the old session).
    """
    specs = provider_specs(tenant_id=tenant_id, channel=channel)
    if not specs:
        return None
    name, path, config = specs[0]
    key = (name, path)
    held = _instances.get(key)
    if held is not None and held[0] == config:
        return held[1]
    if held is not None:
        held[1].close()
    provider = import_string(path)(config)
    _instances[key] = (config, provider)
    return provider


def clear_cache() -> None:
    """Forget configuration and close every held provider session."""
    _cache.clear()
    for _config, provider in _instances.values():
        provider.close()
    _instances.clear()
