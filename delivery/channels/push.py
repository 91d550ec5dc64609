"""Push channel policy: which devices a push goes to, and what a vendor's "this token is dead" means.

Every push vendor (FCM for app tokens, Web Push for browser subscriptions) reaches the same ``comms.Device``
rows, so the device list is read here, and a token a vendor reports dead (``SendResult.dead_addresses``,
in the vendor's own words, e.g. FCM's UNREGISTERED) is disabled here, through the kernel's
``devices_disable`` (tenant-scoped), so later sends skip it until the app registers it again.
Both run on the engine's thread (they use the database); a vendor only reports.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from comms.models import Device
from comms.services import devices_disable
from delivery.providers.base import SendResult


# A token vendor (FCM; APNs) cannot reach a browser's Web Push endpoint and Web Push cannot reach a
# token: each vendor serves its own platforms.
TOKEN_PLATFORMS = ("android", "ios", "web")
WEBPUSH_PLATFORMS = ("webpush",)


def targets(message: Any, *, platforms: tuple[str, ...] = TOKEN_PLATFORMS,
            fields: tuple[str, ...] = ()) -> list[tuple]:
    """(token, platform, device id or None, *fields) for every device this message goes to on
    `platforms`: a recipient's active devices (only the one named by the address, when it names one),
    else the raw token (a bare token is taken as an Android FCM token; a bare Web Push endpoint has no
    keys and is never sent)."""
    active = Device.objects.filter(tenant_id=message.tenant_id, disabled_at__isnull=True, platform__in=platforms)
    columns = ("token", "platform", "id", *fields)
    if message.recipient_id is not None:
        devices = list(active.filter(recipient_id=message.recipient_id).values_list(*columns))
        one = [d for d in devices if d[0] == message.recipient_address]
        return one or devices
    known = list(active.filter(token=message.recipient_address).values_list(*columns))
    if known or "android" not in platforms:
        return known
    return [(message.recipient_address, "android", None, *("" for _ in fields))]


def no_targets(message: Any, *, platforms: tuple[str, ...]) -> SendResult:
    """What a vendor answers when the message has no device on its platforms. When the recipient has
    active devices another push vendor serves, a transient ``COMMS_OTHER_VENDOR`` (not a provider fault,
    nothing was sent) moves the message to the next vendor of the push chain; else ``COMMS_NO_DEVICES``.
    A push reaches the devices of the first vendor in the chain that has any (docs/operations.md)."""
    if message.recipient_id is not None and Device.objects.filter(
            tenant_id=message.tenant_id, recipient_id=message.recipient_id, disabled_at__isnull=True).exclude(
            platform__in=platforms).exists():
        return SendResult.transient("COMMS_OTHER_VENDOR", "the recipient's devices are served by another push vendor")
    return SendResult.permanent("COMMS_NO_DEVICES", "the recipient has no active push device")


def settle(message: Any, result: SendResult, *, vendor: str) -> int:
    """Disable the devices whose tokens the vendor reported dead; how many were disabled."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for token, code in result.dead_addresses:
        by_code[code].append(token)
    return sum(devices_disable(tenant_id=message.tenant_id, tokens=tokens, reason=f"{vendor} {code}")
               for code, tokens in by_code.items())
