"""Push channel policy: which devices a push goes to, and what a vendor's "this token is dead" means.

Every push vendor (FCM today; APNs or Web Push directly later) reaches the same ``comms.Device``
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


def targets(message: Any) -> list[tuple[str, str, Any]]:
    """(token, platform, device id or None) for every device this message goes to: a recipient's
    active devices (only the one named by the address, when it names one), else the raw token."""
    active = Device.objects.filter(tenant_id=message.tenant_id, disabled_at__isnull=True)
    if message.recipient_id is not None:
        devices = list(active.filter(recipient_id=message.recipient_id).values_list("token", "platform", "id"))
        one = [d for d in devices if d[0] == message.recipient_address]
        return one or devices
    known = list(active.filter(token=message.recipient_address).values_list("token", "platform", "id"))
    return known or [(message.recipient_address, "android", None)]


def settle(message: Any, result: SendResult, *, vendor: str) -> int:
    """Disable the devices whose tokens the vendor reported dead; how many were disabled."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for token, code in result.dead_addresses:
        by_code[code].append(token)
    return sum(devices_disable(tenant_id=message.tenant_id, tokens=tokens, reason=f"{vendor} {code}")
               for code, tokens in by_code.items())
