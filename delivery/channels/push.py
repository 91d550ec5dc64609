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
    return vendor_targets(message, platforms=platforms, fields=fields)[0]


def vendor_targets(message: Any, *, platforms: tuple[str, ...] = TOKEN_PLATFORMS,
                   fields: tuple[str, ...] = ()) -> tuple[list[tuple], SendResult | None]:
    """(targets as ``targets()``, and when there are none, what the vendor answers), in one query.

    With no device on the vendor's `platforms` but active devices another push vendor serves, the
    answer is a transient ``COMMS_OTHER_VENDOR`` (not a provider fault, nothing was sent): the message
    moves on to the next vendor of the push chain. Else ``COMMS_NO_DEVICES``. A push reaches the
    devices of the first vendor in the chain that has any (docs/api.md, "Web Push")."""
    active = Device.objects.filter(tenant_id=message.tenant_id, disabled_at__isnull=True)
    columns = ("token", "platform", "id", *fields)
    if message.recipient_id is not None:
        every = list(active.filter(recipient_id=message.recipient_id).values_list(*columns))
        devices = [d for d in every if d[1] in platforms]
        one = [d for d in devices if d[0] == message.recipient_address]
        named_elsewhere = not one and any(d[0] == message.recipient_address for d in every)
        if (one or devices) and not named_elsewhere:  # an address naming another vendor's device is not ours
            return one or devices, None
        if every:
            return [], SendResult.transient("COMMS_OTHER_VENDOR",
                                            "the recipient's devices are served by another push vendor")
        return [], _NO_DEVICES
    named = list(active.filter(token=message.recipient_address).values_list(*columns))
    known = [d for d in named if d[1] in platforms]
    if known:
        return known, None
    if named:
        return [], SendResult.transient("COMMS_OTHER_VENDOR", "the device is served by another push vendor")
    if "android" in platforms and not message.recipient_address.startswith("https://"):
        return [(message.recipient_address, "android", None, *("" for _ in fields))], None
    return [], _NO_DEVICES


_NO_DEVICES = SendResult.permanent("COMMS_NO_DEVICES", "the recipient has no active push device")


def settle(message: Any, result: SendResult, *, vendor: str) -> int:
    """Disable the devices whose tokens the vendor reported dead; how many were disabled."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for token, code in result.dead_addresses:
        by_code[code].append(token)
    return sum(devices_disable(tenant_id=message.tenant_id, tokens=tokens, reason=f"{vendor} {code}")
               for code, tokens in by_code.items())
