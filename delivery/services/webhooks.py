"""Webhook endpoints: registration, secret rotation, disabling."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from comms.crypto import encrypt_json
from comms.netsafe import resolve_safe, split_http_url
from delivery.models import WebhookEndpoint


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def endpoint_create(*, tenant: Any, url: str, description: str = "", actor: Any = None) -> tuple[WebhookEndpoint, str]:
    """Register a subscriber URL (checked against SSRF rules now, and again on every send): a malformed
    URL is a 400 COMMS_VALIDATION_ERROR, a well-formed one to a non-public address (however the host
    is spelled: decimal, hex or octal IPv4, IPv4-mapped IPv6) a 422 COMMS_UNSAFE_DESTINATION."""
    split_http_url(url)
    resolve_safe(url)
    secret = new_secret()
    try:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=url, description=description,
                                                      secret_encrypted=encrypt_json(secret))
    except IntegrityError:
        raise errors.ValidationFailed("This URL is already registered.", details={"field": "url"}) from None
    audit_record(actor=actor, action="webhook_endpoint.create", target=endpoint, tenant=tenant)
    return endpoint, secret


@transaction.atomic
def endpoint_rotate(*, endpoint: WebhookEndpoint, actor: Any = None) -> str:
    """A new secret; the old one keeps signing (as a second signature) for the grace period."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_expires_at = timezone.now() + timedelta(hours=settings.COMMS_WEBHOOK_SECRET_GRACE_HOURS)
    endpoint.secret_encrypted = encrypt_json(secret)
    endpoint.save()
    audit_record(actor=actor, action="webhook_endpoint.rotate", target=endpoint, tenant=endpoint.tenant)
    return secret


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, actor: Any = None) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
        disabled_at=timezone.now(), disabled_reason=reason[:200])
    audit_record(actor=actor, action="webhook_endpoint.disable", target=endpoint, reason=reason,
                 tenant=endpoint.tenant)


def endpoint_active(*, tenant: Any, url: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, url=url, disabled_at__isnull=True).first()
    if endpoint is None:
        raise unverified(url)
    return endpoint


def unverified(url: str) -> errors.CommsError:
    return errors.WebhookUnverified(f"'{url[:80]}' is not a registered, active webhook endpoint.", details={"url": url})
