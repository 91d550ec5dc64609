"""The audit log's one writer: services call ``audit_record`` in the transaction that changes state.

The actor travels with the action (Zulip's ``do_*(…, acting_user=…)``): a service that changes state
takes ``actor=`` (a user, an API principal, or None for the system) and writes its row itself, so a
view or an admin class never does. Services that internal code also calls (imports, fixtures, other
services) audit when an actor is given; ``actor=None`` passed to ``audit_record`` itself means "system".
"""

from __future__ import annotations

from typing import Any

from comms.models import AuditEntry


def audit_record(*, actor: Any, action: str, target: Any, diff: dict | None = None, reason: str = "",
                 ip: str | None = None, tenant: Any = None) -> AuditEntry:
    """Append one audit entry. `actor` is a user, an API principal, or None for the system."""
    user = actor if getattr(actor, "_meta", None) and actor._meta.label_lower == "auth.user" else None
    if user is not None:
        label = user.get_username()
    elif actor is not None and hasattr(actor, "api_key"):
        label = f"api-key:{actor.api_key.prefix}"
    else:
        label = str(actor) if actor is not None else "system"
    return AuditEntry.objects.create(
        actor=user, actor_label=label, tenant=tenant or getattr(target, "tenant", None), action=action,
        target_type=target._meta.label_lower, target_id=str(target.pk), target_label=str(target)[:255],
        diff=diff or {}, reason=reason, ip=ip,
    )


def client_ip(request: Any) -> str | None:
    """The caller's address as the web server saw it (a proxy's X-Forwarded-For is not trusted here)."""
    meta = getattr(request, "META", None) or getattr(getattr(request, "_request", None), "META", {})
    return meta.get("REMOTE_ADDR") or None
