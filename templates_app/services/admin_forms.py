"""The use cases behind the admin's template forms: saving a template's settings and a draft's fields.

The admin validates the form and calls one of these; each writes its rows and its audit entry in one
transaction (the admin class never writes audit rows itself).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from comms.audit import audit_record
from comms.services import tenant_get_default
from templates_app.models import Template, TemplateLocale, TemplateVersion


@transaction.atomic
def template_settings_save(*, template: Template, created: bool, changed: list[str], actor: Any,
                           ip: str | None = None) -> Template:
    """Save a template's settings; a new one gets the default tenant (unless set), its creator and an
    empty v1 draft in its default locale. Audited as ``template.create`` or ``template.settings``."""
    if created:
        template.tenant_id = template.tenant_id or tenant_get_default().pk
        template.created_by = actor
    template.save()
    if created:
        version = TemplateVersion.objects.create(template=template, version=1, created_by=actor)
        TemplateLocale.objects.create(version=version, locale=template.default_locale)
    audit_record(actor=actor, action="template.create" if created else "template.settings", target=template,
                 diff={f: "changed" for f in changed}, ip=ip)
    return template


@transaction.atomic
def version_fields_save(*, version: TemplateVersion, changed: list[str], actor: Any,
                        ip: str | None = None) -> TemplateVersion:
    """Save a draft version's own fields (schema, sample variables, experiment, notes); ``template.edit``."""
    version.save()
    audit_record(actor=actor, action="template.edit", target=version, diff={f: "changed" for f in changed}, ip=ip)
    return version
