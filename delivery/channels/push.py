"""Push channel policy: which devices a push goes to, and what a vendor's "this token is dead" means.

Every push vendor (FCM for app tokens, APNs for iOS tokens, Web Push for browser subscriptions) reaches
the same ``comms.Device`` rows, so the device list is read here, and a token a vendor reports dead
(``SendResult.dead_addresses``, in the vendor's own words, e.g. FCM's UNREGISTERED) is disabled here,
through the kernel's ``devices_disable`` (tenant-scoped), so later sends skip it until the app registers
it again. Both run on the engine's thread (they use the database); a vendor only reports.

Which vendor carries a device is decided here too, by one rule (``vendor_of``, applied by ``route``):
Web Push subscriptions go to Web Push; iOS devices to APNs directly where
``comms.addresses.ios_push_service`` says so for the tenant, else to FCM; everything else to FCM. A
message whose devices are all one vendor's goes straight to that vendor; one spanning vendors goes to
the first of them in the push chain and each other vendor gets one follow-up with its device list, so a
recipient with an app and a browser gets both (docs/api.md, "Which vendor gets which device").
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

# Which vendor carries a device (one rule, here; a vendor module only speaks its wire format):
# Web Push subscriptions go to Web Push; iOS devices to APNs where the tenant routes iOS there
# (COMMS_PUSH_IOS_VIA[_TENANTS]), else, like Android and FCM's web tokens, to FCM.
VENDORS = ("fcm", "apns", "webpush")
# A follow-up carrying one vendor's share of a message names its vendor and devices here, in its metadata.
SHARE_KEY = "_push_share"
_COLUMNS = ("token", "platform", "id", "keys_encrypted")


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


def vendor_of(platform: str, *, direct_ios: bool) -> str:
    """The vendor that carries a device of this platform: ``webpush``, ``apns`` or ``fcm``."""
    if platform == "webpush":
        return "webpush"
    return "apns" if platform == "ios" and direct_ios else "fcm"


def oversize(payload: bytes, *, limit: int = APNS_PAYLOAD_LIMIT) -> str:
    """Why a vendor must not send this payload (empty when it fits)."""
    return f"the payload is {len(payload)} bytes; the limit is {limit}" if len(payload) > limit else ""


def targets(message: Any, *, vendor: str, fields: tuple[str, ...] = ()) -> list[tuple]:
    """(token, platform, device id or None, *fields) for every device `vendor` carries for this message."""
    return vendor_targets(message, vendor=vendor, fields=fields)[0]


def vendor_targets(message: Any, *, vendor: str, fields: tuple[str, ...] = ()) -> tuple[list[tuple], SendResult | None]:
    """(`vendor`'s devices for this message as ``targets()``, and when there are none, what it answers).

    ``route`` hands a vendor only messages with devices of its own, so an empty list means the devices
    changed in between: ``COMMS_OTHER_VENDOR`` (transient, nothing sent) when another vendor's remain,
    else ``COMMS_NO_DEVICES``."""
    found = _all_targets(message)
    direct = ios_direct(message.tenant_id)
    width = 3 + len(fields)
    mine = [t[:width] for t in found if vendor_of(t[1], direct_ios=direct) == vendor]
    if mine:
        return mine, None
    if found:
        return [], SendResult.transient("COMMS_OTHER_VENDOR", "the recipient's devices are served by another push vendor")
    return [], _NO_DEVICES


_NO_DEVICES = SendResult.permanent("COMMS_NO_DEVICES", "the recipient has no active push device")


def _all_targets(message: Any) -> list[tuple]:
    # `route` reads the devices and the first vendor's `prepare` (next, on the same thread) takes that
    # read; a failover's `prepare` reads again, so devices the first vendor pruned are left out.
    cached = getattr(message, "_push_targets", None)
    if cached is not None:
        message._push_targets = None
        return cached
    return _read_targets(message)


def _read_targets(message: Any) -> list[tuple]:
    """Every active device this message goes to (token, platform, id, keys_encrypted), in one query: the
    recipient's (only the one the address names, when it names one; only a share's, for a vendor's
    follow-up), else the device registered under the raw token, else the raw token itself."""
    active = Device.objects.filter(tenant_id=message.tenant_id, disabled_at__isnull=True)
    if message.recipient_id is not None:
        devices = list(active.filter(recipient_id=message.recipient_id).values_list(*_COLUMNS))
        one = [d for d in devices if d[0] == message.recipient_address]
        found = one or devices
        share = (message.metadata or {}).get(SHARE_KEY) if isinstance(message.metadata, dict) else None
        if isinstance(share, dict) and isinstance(share.get("devices"), list):
            wanted = set(share["devices"])
            found = [d for d in found if d[0] in wanted]
        return found
    known = list(active.filter(token=message.recipient_address).values_list(*_COLUMNS))
    if known:
        return known
    raw = message.recipient_address
    if raw.startswith("https://"):
        return []  # a bare Web Push endpoint has no keys: never sent
    # A raw token nobody registered: where iOS goes to APNs, APNs' 64 hex digits are an iOS device's;
    # anything else is FCM's (as before APNs: sent with the Android options).
    ios = len(raw) == 64 and all(c in "0123456789abcdefABCDEF" for c in raw) and ios_direct(message.tenant_id)
    return [(raw, "ios" if ios else "android", None, "")]


def _vendor(spec: Any) -> str:
    name = import_string(spec.path).name
    return name if name in VENDORS else "fcm"  # another push class: it stands where FCM does


def route(message: Any, chain: list) -> tuple[list, dict[str, dict]]:
    """(the part of the provider chain that carries this message, its shares for the other vendors).

    The message's devices are split by vendor (``vendor_of``). All of one vendor's: the message goes to
    that vendor's providers only (its failover rows included), nothing else. Spanning vendors: it goes
    to the first of them in chain order, and every other vendor gets ONE follow-up carrying that vendor's
    device list (``{name: metadata}``; the engine creates it once per message and vendor, so a retried
    send makes no second one). A vendor with no provider gets a share only when it is APNs for a tenant
    routing iOS there (it waits, and start-up warns delivery.W001); without any provider for the
    message's devices the chain is empty (COMMS_CHANNEL_UNAVAILABLE, retried)."""
    found = _read_targets(message)
    message._push_targets = found  # for the first vendor's prepare
    if not found:
        return chain, {}  # the first vendor answers COMMS_NO_DEVICES
    direct = ios_direct(message.tenant_id)
    devices: dict[str, list[str]] = {}
    for token, platform, *_rest in found:
        devices.setdefault(vendor_of(platform, direct_ios=direct), []).append(token)
    in_chain = list(dict.fromkeys(_vendor(s) for s in chain))
    served = [v for v in in_chain if v in devices] + (["apns"] if direct and "apns" in devices
                                                      and "apns" not in in_chain else [])
    if not served:
        return [], {}
    first, others = served[0], served[1:]
    if others and message.attempt_count > 1:  # a retry: vendors whose share was made go no other way
        made = set(message_shares(message))
        first = next((v for v in served if v not in made), first)
        others = [v for v in served if v != first]
    mine = [s for s in chain if _vendor(s) == first]
    return mine, {v: {SHARE_KEY: {"vendor": v, "devices": devices[v]}} for v in others}


def message_shares(message: Any) -> list[str]:
    """The vendors a share (follow-up) of this message was already made for."""
    from delivery.models import Message

    keys = Message.objects.filter(tenant_id=message.tenant_id, fallback_of=message.id,
                                  idempotency_key__startswith=f"share:{message.id}:").values_list("idempotency_key", flat=True)
    return [k.rsplit(":", 1)[1] for k in keys]


def settle(message: Any, result: SendResult, *, vendor: str) -> int:
    """Disable the devices whose tokens the vendor reported dead; how many were disabled."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for token, code in result.dead_addresses:
        by_code[code].append(token)
    return sum(devices_disable(tenant_id=message.tenant_id, tokens=tokens, reason=f"{vendor} {code}")
               for code, tokens in by_code.items())
