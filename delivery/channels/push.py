"""Push channel policy: which devices a push goes to, and what a vendor's "this token is dead" means.

Every push vendor (FCM today; APNs or Web Push directly later) reaches the same ``comms.Device``
rows, so the device list is read here, and a token a vendor reports dead (``SendResult.dead_addresses``,
in the vendor's own words, e.g. FCM's UNREGISTERED) is disabled here, through the kernel's
``devices_disable`` (tenant-scoped), so later sends skip it until the app registers it again.
Both run on the engine's thread (they use the database); a vendor only reports.

Which vendor carries a device is decided here too (``route``): Android and web devices go to FCM;
iOS devices go to FCM (APNs through FCM, the default) or to APNs directly, as
``comms.addresses.ios_push_service`` says for the tenant. A message to a recipient whose devices
need both is sent through FCM's side of the chain, and each iOS device gets a follow-up message of
its own (addressed to its token) that goes to APNs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from comms.addresses import ios_push_service
from comms.models import Device, Tenant
from comms.services import devices_disable
from delivery.providers.base import SendResult

# APNs refuses a payload over 4 KB (413 PayloadTooLarge; Apple, "Generating a remote notification":
# "the maximum size allowed for a notification payload is 4 kilobytes"). Checked before the request.
APNS_PAYLOAD_LIMIT = 4096
_slugs: dict[str, str] = {}


def _tenant_slug(tenant_id: Any) -> str:
    key = str(tenant_id)
    if key not in _slugs:  # slugs do not change; one read per tenant per process
        _slugs[key] = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first() or ""
    return _slugs[key]


def ios_direct(tenant_id: Any) -> bool:
    """Whether this tenant's iOS devices go to APNs directly (no database read in the default setup)."""
    if not settings.COMMS_PUSH_IOS_VIA_TENANTS and settings.COMMS_PUSH_IOS_VIA != "apns":
        return False
    return ios_push_service(_tenant_slug(tenant_id)) == "apns"


def service_for(platform: str, *, direct_ios: bool) -> str:
    """The vendor that carries a device of this platform: ``apns`` or ``fcm``."""
    return "apns" if platform == "ios" and direct_ios else "fcm"


def oversize(payload: bytes, *, limit: int = APNS_PAYLOAD_LIMIT) -> str:
    """Why a vendor must not send this payload (empty when it fits)."""
    return f"the payload is {len(payload)} bytes; the limit is {limit}" if len(payload) > limit else ""


def targets(message: Any, *, service: str | None = None) -> list[tuple[str, str, Any]]:
    """(token, platform, device id or None) for every device this message goes to: a recipient's
    active devices (only the one named by the address, when it names one), else the raw token.
    With ``service``, only the devices that vendor carries (see ``route``)."""
    found = _all_targets(message)
    if service is None:
        return found
    direct = ios_direct(message.tenant_id)
    return [t for t in found if service_for(t[1], direct_ios=direct) == service]


def _all_targets(message: Any) -> list[tuple[str, str, Any]]:
    # `route` reads the devices and the first vendor's `prepare` (next, on the same thread) takes that
    # read; a failover's `prepare` reads again, so devices the first vendor pruned are left out.
    cached = getattr(message, "_push_targets", None)
    if cached is not None:
        message._push_targets = None
        return cached
    return _read_targets(message)


def _read_targets(message: Any) -> list[tuple[str, str, Any]]:
    active = Device.objects.filter(tenant_id=message.tenant_id, disabled_at__isnull=True)
    if message.recipient_id is not None:
        devices = list(active.filter(recipient_id=message.recipient_id).values_list("token", "platform", "id"))
        one = [d for d in devices if d[0] == message.recipient_address]
        return one or devices
    known = list(active.filter(token=message.recipient_address).values_list("token", "platform", "id"))
    if known:
        return known
    # A raw token nobody registered: where iOS goes to APNs, APNs' 64 hex digits are an iOS device's;
    # anything else is FCM's (as before APNs: sent with the Android options).
    raw = message.recipient_address
    ios = len(raw) == 64 and all(c in "0123456789abcdefABCDEF" for c in raw) and ios_direct(message.tenant_id)
    return [(raw, "ios" if ios else "android", None)]


def _vendor(spec: Any) -> str:
    return "apns" if import_string(spec.path).name == "apns" else "fcm"


def route(message: Any, chain: list) -> tuple[list, tuple[str, ...]]:
    """(the part of the provider chain that carries this message, tokens to send as follow-ups).

    iOS through FCM (the default): APNs providers are left out. iOS to APNs: a message whose devices
    are all iOS goes to the APNs providers only, one without iOS devices to the others, and a mixed
    one to the others while each iOS device gets its own follow-up (which then routes to APNs).
    """
    fcm_side = [s for s in chain if _vendor(s) == "fcm"]
    if not any(_vendor(s) == "apns" for s in chain) and not ios_direct(message.tenant_id):
        return chain, ()
    if not ios_direct(message.tenant_id):
        return fcm_side, ()
    found = _all_targets(message)
    message._push_targets = found  # for the first vendor's prepare
    ios = [t[0] for t in found if t[1] == "ios"]
    if not ios:
        return fcm_side, ()
    apns_side = [s for s in chain if _vendor(s) == "apns"]
    if len(ios) == len(found):
        return apns_side, ()
    return fcm_side, tuple(ios)


def settle(message: Any, result: SendResult, *, vendor: str) -> int:
    """Disable the devices whose tokens the vendor reported dead; how many were disabled."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for token, code in result.dead_addresses:
        by_code[code].append(token)
    return sum(devices_disable(tenant_id=message.tenant_id, tokens=tokens, reason=f"{vendor} {code}")
               for code, tokens in by_code.items())
