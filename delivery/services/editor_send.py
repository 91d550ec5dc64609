"""Test sends from the template editor: one version, rendered from its sample variables, to an
allow-listed address. A delivery use case (it enqueues a message) that reads templates, so it sits
above templates_app, never in it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from comms import errors
from comms.audit import audit_record
from delivery.services.enqueue import SendSpec, message_enqueue
from templates_app.services import render_for_send

TEST_SEND_CHANNELS = ("email", "sms")


def test_address_allowed(address: str) -> bool:
    """COMMS_TEST_SEND_ALLOWLIST holds exact addresses and '@domain' entries (case-insensitive)."""
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
