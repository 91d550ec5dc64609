"""The providers the settings name, in one place: every reader of COMMS_CHANNEL_PROVIDERS and
COMMS_CHANNEL_FAILOVER (routing, start-up checks, the dashboard's provider tables and metrics) walks the
same list, so a provider added to a chain (push: FCM, Web Push, APNs) shows up everywhere at once.

In the kernel (not delivery.routing, which re-exports it) because the kernel's own start-up check needs
it and the kernel imports no other app."""

from __future__ import annotations

from django.conf import settings


def settings_providers() -> list[tuple[str, str]]:
    """(channel, dotted path) of every provider the settings name, in failover order: COMMS_CHANNEL_PROVIDERS
    (a channel's value is one path or a chain of them), then that channel's COMMS_CHANNEL_FAILOVER chain."""
    found = [(channel, path) for channel, paths in settings.COMMS_CHANNEL_PROVIDERS.items()
             for path in ([paths] if isinstance(paths, str) else paths)]
    for channel, paths in getattr(settings, "COMMS_CHANNEL_FAILOVER", {}).items():
        found += [(channel, path) for path in paths if (channel, path) not in found]
    return found
