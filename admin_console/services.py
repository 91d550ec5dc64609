"""Audit services other apps call when they change state."""

from __future__ import annotations

from typing import Any

from admin_console.models import AuditEntry


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


# --- console use cases ---------------------------------------------------------------------------------

TEST_SEND_CHANNELS = ("email", "sms")


def test_address_allowed(address: str) -> bool:
    """COMMS_TEST_SEND_ALLOWLIST holds exact addresses and '@domain' entries (case-insensitive)."""
    from django.conf import settings

    address = address.strip().lower()
    for entry in settings.COMMS_TEST_SEND_ALLOWLIST:
        entry = entry.strip().lower()
        if entry and (address == entry or (entry.startswith("@") and address.endswith(entry))):
            return True
    return False


def template_test_send(*, version: Any, user: Any, channel: str, address: str, locale: str = "",
                       ip: str | None = None) -> Any:
    """Send one version (draft or not) rendered from its sample variables to an allow-listed address.

    The message carries ``metadata.cause_event = 'admin.test'`` (seed 001) plus who sent which
    version, is P1 so it arrives while the editor waits, and is audited.
    """
    from django.db import transaction

    from comms import errors
    from delivery.services import SendSpec, message_enqueue
    from templates_app.services import render_for_send

    if not (user.has_perm("templates_app.change_template") or user.has_perm("templates_app.approve_template")):
        raise errors.Forbidden("Test sends need the editor or approver role.")
    if channel not in TEST_SEND_CHANNELS or channel not in version.template.channels:
        raise errors.ValidationFailed(f"Test sends go by {' or '.join(TEST_SEND_CHANNELS)} on a channel the "
                                      f"template has ({', '.join(version.template.channels)}).")
    if not test_address_allowed(address):
        raise errors.Forbidden(f"{address} is not on the test-send allow-list (COMMS_TEST_SEND_ALLOWLIST).",
                               details={"address": address})
    render = render_for_send(version=version, channel=channel, variables=version.sample_variables or {},
                             locale=locale, timezone="UTC", recipient_key=address)
    content = render.content
    template = version.template
    with transaction.atomic():
        message, _ = message_enqueue(tenant=template.tenant, spec=SendSpec(
            channel=channel, to=address.strip(), subject=content.subject, body=content.body,
            body_html=content.body_html, priority=1, category=template.category,
            metadata={"cause_event": "admin.test", "template": template.template_key, "version": version.version,
                      "variant": render.variant, "locale": render.locale, "by": user.get_username()}))
        audit_record(actor=user, action="template.test_send", target=version, ip=ip, tenant=template.tenant,
                     diff={"message": str(message.id), "channel": channel, "address": address})
    return message


def experiment_weights_set(*, version: Any, user: Any, weights: dict[str, float], reason: str,
                           ip: str | None = None) -> Any:
    """Change the traffic split of a version's experiment variants (staged rollout of a variant).

    Only weights change; the variants' content stays as approved. Approvers only; audited with the
    old and new split. A weight of 0 takes a variant out of rotation.
    """
    from django.db import transaction

    from comms import errors
    from templates_app.models import TemplateVersion

    if not user.has_perm("templates_app.approve_template"):
        raise errors.Forbidden("Changing experiment weights needs the approver role.")
    if not reason.strip():
        raise errors.ValidationFailed("Say why the split changes (a reason is required).")
    with transaction.atomic():
        version = TemplateVersion.objects.select_for_update().select_related("template").get(pk=version.pk)
        experiment = dict(version.experiment or {})
        variants = [dict(v) for v in experiment.get("variants", [])]
        known = {v.get("key") for v in variants}
        if not variants or set(weights) - known:
            raise errors.ValidationFailed("Unknown variant(s): " + ", ".join(sorted(set(weights) - known))
                                          if variants else "This version has no experiment variants.")
        if any(w < 0 or w != w for w in weights.values()):
            raise errors.ValidationFailed("Weights are zero or positive numbers.")
        before = {v["key"]: v.get("weight", 0) for v in variants}
        for v in variants:
            if v["key"] in weights:
                v["weight"] = weights[v["key"]]
        if sum(float(v.get("weight", 0)) for v in variants) <= 0:
            raise errors.ValidationFailed("At least one variant needs a positive weight.")
        experiment["variants"] = variants
        version.experiment = experiment
        version.save(update_fields=["experiment"])
        audit_record(actor=user, action="template.experiment_weights", target=version, reason=reason, ip=ip,
                     tenant=version.template.tenant,
                     diff={"weights": [before, {v["key"]: v.get("weight", 0) for v in variants}]})
    return version
