"""Templates, recipients and rules shared by the router tests."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from comms.models import Recipient
from comms.router.rules import rule_save
from templates_app import services as templates

BOOKING_SCHEMA = {"type": "object", "required": ["booking_id"],
                  "properties": {"booking_id": {"type": "string"}, "status": {"type": "string"},
                                 "amount": {"type": "number"}}}


DIGEST_SCHEMA = {"type": "object", "required": ["events", "count"],
                 "properties": {"events": {"type": "array"}, "count": {"type": "integer"}, "key": {"type": "string"}}}


def _staff(name: str, *perms: str):
    user, _ = get_user_model().objects.get_or_create(username=name, defaults={"is_staff": True})
    for perm in perms:
        app, code = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=code))
    return get_user_model().objects.get(pk=user.pk)


def live_template(tenant, key: str, *, subject: str, body_html: str, schema: dict | None = None,
                  in_app: dict | None = None, sms: str = "", category: str = "transactional", sample: dict | None = None,
                  channels: list[str] | None = None, push: tuple[str, str] | None = None):
    """Create a template and take it through review to active."""
    editor, approver = _staff("router-editor"), _staff("router-approver", "templates_app.approve_template")
    template = templates.template_create(tenant=tenant, actor=editor, user=editor, data={
        "template_key": key, "name": key, "category": category, "channels": channels or ["email", "in_app", "sms"],
        "default_locale": "en-US", "variables_schema": schema or {}, "sample_variables": sample or {},
        "locales": [{"locale": "en-US", "subject": subject, "body_html": body_html, "sms_text": sms or subject,
                     "in_app_content": in_app or {"title": subject, "body": subject},
                     **({"push_title": push[0], "push_body": push[1]} if push else {})}],
    })
    version = template.versions.get()
    templates.version_submit(version=version, actor=editor, user=editor)
    templates.version_approve(version=version, user=approver)
    template.refresh_from_db()
    return template


def booking_templates(tenant) -> None:
    live_template(tenant, "booking_confirmed", subject="Booking {{booking_id}} {{status}}",
                  body_html="<p>Booking {{booking_id}} is {{status}}.</p>", schema=BOOKING_SCHEMA,
                  sample={"booking_id": "B0", "status": "new"})
    live_template(tenant, "booking_digest", subject="{{count}} booking updates",
                  body_html="<ul>{{#each events}}<li>{{this.payload.booking_id}}: {{this.payload.status}}</li>"
                            "{{/each}}</ul>", schema=DIGEST_SCHEMA,
                  sample={"count": 1, "events": [{"payload": {"booking_id": "B0", "status": "new"}}]})


def person(tenant, external_id: str, *, email: bool = True, tz: str = "UTC", **attributes) -> Recipient:
    return Recipient.objects.create(tenant=tenant, external_id=external_id,
                                    email=f"{external_id}@example.com" if email else "", timezone=tz,
                                    attributes=attributes)


def rule(tenant, event_name: str, *steps: dict, **extra):
    return rule_save(tenant=tenant, event_name=event_name, definition={"steps": list(steps), **extra})
