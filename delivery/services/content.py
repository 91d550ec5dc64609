"""What a claimed row says: its rendered content (bulk rows render here, single sends were rendered
when accepted) and the headers that name the template behind an email."""

from __future__ import annotations

from functools import lru_cache

from comms import errors
from delivery.models import Message
from delivery.providers.base import Content
from templates_app import services as templates
from templates_app.models import TemplateVersion


class Unrenderable(Exception):
    """A bulk row whose template cannot be rendered for it: a permanent failure of that row."""

    def __init__(self, error: errors.CommsError):
        self.error = error


def content_for(message: Message, batches: dict) -> Content:
    """The rendered content of a message.

    Single sends were rendered when accepted. Bulk rows share their batch's inline content, or
    are rendered here from the batch's pinned template version with the row's own variables and
    locale (compiled once per version, so a 10,000-row batch compiles once) and archived.
    """
    batch = batches.get(message.batch_id) if message.batch_id else None
    if batch is None:
        data = message.payload
        if message.template_version_id and message.channel == "email":
            data = {**data, "headers": template_headers(message.template_key, message.template_version_id)}
        return Content(subject=message.subject, body=message.body, body_html=message.body_html, data=data)
    if not batch.template_version_id:
        return Content(subject=batch.subject, body=batch.body, body_html=batch.body_html)
    version = batch.template_version
    try:
        render = templates.render_for_send(
            version=version, channel=message.channel, variables=message.variables, locale=message.locale,
            timezone=message.recipient.timezone if message.recipient_id and message.recipient else "UTC",
            recipient_key=message.recipient.external_id if message.recipient_id and message.recipient
            else message.recipient_address,
            variant=str((batch.metadata or {}).get("ab_variant") or ""),
        )
    except errors.CommsError as exc:
        raise Unrenderable(exc) from None
    message.variant = render.variant
    message.artifact = templates.artifact_store(tenant_id=message.tenant_id, message_id=message.id, render=render,
                                                channel=message.channel)
    c = render.content
    data = c.data
    if message.channel == "email":
        data = {**data, "headers": template_headers(version.template.template_key, version.pk)}
    return Content(subject=c.subject, body=c.body, body_html=c.body_html, data=data)


@lru_cache(maxsize=4096)
def _version_number(version_id: int) -> int:
    return TemplateVersion.objects.values_list("version", flat=True).get(pk=version_id)


def template_headers(template_key: str, version_id: int) -> dict[str, str]:
    """Which template (and exact version) produced an email, for the recipient's support desk."""
    return {"X-Template-Name": template_key, "X-Template-Version": str(_version_number(version_id))}
