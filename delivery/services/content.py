"""What a claimed row says: its rendered content (bulk rows render here, single sends were rendered
when accepted) and the headers that name the template behind an email."""

from __future__ import annotations

from functools import lru_cache

from comms import errors
from delivery.models import Message
from delivery.providers.base import Content
from templates_app import rollout
from templates_app import services as templates
from templates_app.models import TemplateVersion


class Unrenderable(Exception):
    """A bulk row whose template cannot be rendered for it: a permanent failure of that row."""

    def __init__(self, error: errors.CommsError):
        self.error = error


def batch_splits(batches: dict) -> dict[int, rollout.BatchSplit]:
    """The staged rollouts the claimed batches' rows follow (one query; none without a template)."""
    pinned = [(b.template_version_id, b.created_at) for b in batches.values() if b.template_version_id]
    return rollout.rollout_splits(pinned=pinned) if pinned else {}


def content_for(message: Message, batches: dict, splits: dict | None = None) -> Content:
    """The rendered content of a message.

    Single sends were rendered when accepted. Bulk rows share their batch's inline content, or
    are rendered here from the batch's pinned template version with the row's own variables and
    locale (compiled once per version, so a 10,000-row batch compiles once) and archived. While a
    staged rollout of the pinned version is open (``splits``, from ``batch_splits``), a row is rendered
    from the version its recipient's sticky point gives it, and records it (``template_version``).
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
    recipient = message.recipient if message.recipient_id else None
    recipient_key = recipient.external_id if recipient else message.recipient_address  # as single sends
    split = (splits or {}).get(version.pk)
    if split is not None:
        version = split.pick(pinned=version, pinned_at=batch.created_at, recipient_key=recipient_key,
                             current_id=message.template_version_id)
        message.template_version = version  # written with the outcome: the guardrails count it per version
    elif message.template_version_id not in (None, version.pk):  # split on an earlier attempt (e.g. self-test)
        version = message.template_version
    try:
        render = templates.render_for_send(
            version=version, channel=message.channel, variables=message.variables, locale=message.locale,
            timezone=recipient.timezone if recipient else "UTC", recipient_key=recipient_key,
            variant=str((batch.metadata or {}).get("ab_variant") or ""),
        )
    except errors.CommsError as exc:
        if split is not None and split.finished_at is None:
            rollout.rollout_count_render_error(rollout_id=split.rollout_id, version_id=version.pk, row=True)
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
