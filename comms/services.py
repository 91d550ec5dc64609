"""Kernel services: tenants, API keys and the recipient directory."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction

from comms.addresses import normalise_device_token
from comms.audit import audit_record
from comms.auth import KEY_PREFIX, forget_cached_key, hash_key
from comms import webpush
from comms.models import ApiKey, Device, Recipient, Scope, Tenant


def tenant_get_default() -> Tenant:
    """The tenant used when a deployment does not use tenancy."""
    tenant, _ = Tenant.objects.get_or_create(slug=Tenant.DEFAULT_SLUG, defaults={"name": "Default"})
    return tenant


def api_key_create(*, tenant: Tenant, name: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value, which is never stored and cannot be shown again."""
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant, name=name, prefix=prefix, key_hash=hash_key(raw),
        scopes=scopes or [Scope.MESSAGES_SEND, Scope.MESSAGES_READ],
    )
    return key, raw


def api_key_revoke(*, api_key: ApiKey) -> None:
    from django.utils import timezone

    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    forget_cached_key(api_key.prefix)


@transaction.atomic
def recipient_upsert(*, tenant: Tenant, external_id: str, data: dict[str, Any], actor: Any = None,
                     ip: str | None = None) -> tuple[Recipient, bool]:
    """Create or replace a recipient's directory entry (PUT semantics: absent fields reset). Called for
    an actor (a user, an API key), it is audited as ``recipient.create``/``recipient.update``."""
    defaults = {
        "email": data.get("email") or "",
        "phone": data.get("phone") or "",
        "locale": data.get("locale") or "en-US",
        "timezone": data.get("timezone") or "UTC",
        "attributes": data.get("attributes") or {},
    }
    recipient, created = Recipient.objects.update_or_create(tenant=tenant, external_id=external_id,
                                                            defaults=defaults)
    if actor is not None:
        audit_record(actor=actor, action="recipient.create" if created else "recipient.update",
                     target=recipient, diff={"fields": sorted(data)}, ip=ip)
    return recipient, created


@transaction.atomic
def recipient_attributes_update(*, recipient: Recipient, attributes: dict[str, Any], actor: Any = None) -> Recipient:
    """Merge `attributes` into the recipient's (PATCH semantics: other keys stay), audited; a journey's
    ``update`` step uses it, with the journey as the actor."""
    locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
    locked.attributes = {**(locked.attributes or {}), **attributes}
    locked.save(update_fields=["attributes", "updated_at"])
    recipient.attributes = locked.attributes
    audit_record(actor=actor, action="recipient.update", target=locked, diff={"attributes": sorted(attributes)})
    return locked


@transaction.atomic
def device_register(*, recipient: Recipient, token: str, platform: str, app_id: str = "", actor: Any = None,
                    ip: str | None = None) -> tuple[Device, bool]:
    """Register (or move) a push token. A token belongs to one install, so re-registering it for
    another recipient (a different user logged in on the same phone) moves it. A new token registered
    for an actor is audited."""
    from django.utils import timezone

    token = normalise_device_token(token=token, platform=platform, tenant_slug=recipient.tenant.slug)
    device, created = Device.objects.update_or_create(
        tenant_id=recipient.tenant_id, token=token,
        defaults={"recipient": recipient, "platform": platform, "app_id": app_id, "last_seen_at": timezone.now(),
                  "disabled_at": None, "disabled_reason": ""},
    )
    if created and actor is not None:
        audit_record(actor=actor, action="device.register", target=device, ip=ip, tenant=recipient.tenant,
                     diff={"platform": device.platform})
    return device, created


@transaction.atomic
def webpush_subscribe(*, recipient: Recipient, subscription: "webpush.Subscription", app_id: str = "",
                      actor: Any = None, ip: str | None = None) -> tuple[Device, bool]:
    """Register (or move) a browser's Web Push subscription as a ``webpush`` Device: the endpoint is the
    token (one per browser profile and site), its keys are stored encrypted. Re-subscribing after the
    push service pruned it (404/410) enables it again with the new keys."""
    from django.utils import timezone

    device, created = Device.objects.update_or_create(
        tenant_id=recipient.tenant_id, token=subscription.endpoint,
        defaults={"recipient": recipient, "platform": Device.Platform.WEBPUSH, "app_id": app_id,
                  "keys_encrypted": webpush.keys_encrypt(subscription), "last_seen_at": timezone.now(),
                  "disabled_at": None, "disabled_reason": ""},
    )
    if created and actor is not None:
        audit_record(actor=actor, action="device.register", target=device, ip=ip, tenant=recipient.tenant,
                     diff={"platform": device.platform})
    return device, created


@transaction.atomic
def device_unregister(*, tenant: Tenant, token: str, actor: Any = None, ip: str | None = None,
                      reason: str = "") -> bool:
    """Forget a push token; audited for an actor (against the tenant: the device row is gone) when one
    was removed."""
    removed = Device.objects.filter(tenant=tenant, token=token).delete()[0] > 0
    if removed and actor is not None:
        audit_record(actor=actor, action="device.unregister", target=tenant, ip=ip, reason=reason)
    return removed


def devices_disable(*, tenant_id: Any, tokens: list[str], reason: str) -> int:
    """Prune tokens the push service reported dead: later sends skip them until re-registered."""
    from django.utils import timezone

    return Device.objects.filter(tenant_id=tenant_id, token__in=tokens, disabled_at__isnull=True).update(
        disabled_at=timezone.now(), disabled_reason=reason[:200])
