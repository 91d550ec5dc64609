"""Draft → review → active, two approvers for critical categories, request changes, rollback, audit."""

from __future__ import annotations

import pytest

from comms.models import AuditEntry
from comms import errors
from templates_app import services
from templates_app.models import TemplateVersion
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db
Status = TemplateVersion.Status


def _create(tenant, editor, **extra):
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data(**extra))
    return template, template.versions.get()


def test_one_approver_activates_a_normal_template(tenant, editor, approver):
    template, version = _create(tenant, editor)
    assert version.status == Status.DRAFT and template.active_version is None
    services.version_submit(version=version, actor=editor, user=editor)
    with pytest.raises(errors.Forbidden):
        services.version_approve(version=version, user=editor)  # editors lack the approve permission
    services.version_approve(version=version, user=approver, notes="looks good")
    template.refresh_from_db()
    version.refresh_from_db()
    assert version.status == Status.APPROVED and template.active_version == version
    actions = list(AuditEntry.objects.filter(target_type="templates_app.templateversion", target_id=str(version.pk)).order_by("at").values_list("action", flat=True))
    assert actions == ["template.submit", "template.approve", "template.activate"]


def test_an_author_with_the_permission_still_cannot_approve_their_own(tenant, approver, approver2):
    template, version = _create(tenant, approver)
    services.version_submit(version=version, actor=approver, user=approver)
    with pytest.raises(errors.ApprovalRefused):
        services.version_approve(version=version, user=approver)
    services.version_approve(version=version, user=approver2)
    template.refresh_from_db()
    assert template.active_version == version


def test_critical_category_needs_two_distinct_approvers(tenant, editor, approver, approver2):
    template, version = _create(tenant, editor, template_key="password_reset", category="security")
    services.version_submit(version=version, actor=editor, user=editor)
    services.version_approve(version=version, user=approver)
    template.refresh_from_db()
    version.refresh_from_db()
    assert version.status == Status.PENDING and template.active_version is None
    with pytest.raises(errors.ApprovalRefused, match="someone else"):
        services.version_approve(version=version, user=approver)
    services.version_approve(version=version, user=approver2)
    template.refresh_from_db()
    assert template.active_version == version


def test_request_changes_returns_to_draft_with_notes(tenant, editor, approver):
    _, version = _create(tenant, editor)
    services.version_submit(version=version, actor=editor, user=editor)
    with pytest.raises(errors.ValidationFailed):
        services.version_request_changes(version=version, user=approver, notes="  ")
    services.version_request_changes(version=version, user=approver, notes="Fix the subject")
    version.refresh_from_db()
    assert version.status == Status.DRAFT and version.review_notes == "Fix the subject"
    assert AuditEntry.objects.filter(action="template.request_changes", reason="Fix the subject").exists()


def test_edits_create_a_new_draft_and_rollback_reactivates(tenant, editor, approver, make_live):
    template = make_live(tenant)
    v1 = template.active_version
    draft = services.template_edit(template=template, actor=editor, user=editor, data={
        "locales": [{**order_template_data()["locales"][0], "subject": "v2: {{order.id}}"}]})
    assert draft.version == 2 and draft.status == Status.DRAFT
    v1.refresh_from_db()
    assert v1.locales.get(locale="en-US").subject.startswith("Order")  # the live version did not change
    assert services.template_edit(template=template, actor=editor, user=editor, data={"change_notes": "x"}).pk == draft.pk
    services.version_submit(version=draft, actor=editor, user=editor)
    with pytest.raises(errors.TemplateNotEditable):
        services.version_submit(version=draft, actor=editor, user=editor)
    services.version_approve(version=draft, user=approver)
    template.refresh_from_db()
    assert template.active_version.version == 2
    services.version_activate(version=v1, user=approver, reason="v2 broke something")
    template.refresh_from_db()
    assert template.active_version == v1
    assert AuditEntry.objects.filter(action="template.activate", reason="v2 broke something").exists()


def test_activation_refused_for_unknown_variables_and_broken_images(tenant, editor, settings):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    data = order_template_data(template_key="t2")
    data["locales"][0]["subject"] = "{{order.id}} {{surprise}}"
    _, version = _create(tenant, editor, **{k: v for k, v in data.items() if k != "template_key"}, template_key="t2")
    with pytest.raises(errors.TemplateInvalid) as err:
        services.version_submit(version=version, actor=editor, user=editor)
    assert any("surprise" in p for p in err.value.details["problems"])

    class Assets(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200 if self.path == "/ok.png" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Assets)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.COMMS_ASSET_CHECK = True
        base = f"http://127.0.0.1:{server.server_port}"
        locales = order_template_data()["locales"][:1]
        locales[0]["body_html"] = locales[0]["body_html"].replace("https://cdn.example.com/logo.png", f"{base}/gone.png")
        _, broken = _create(tenant, editor, template_key="t3", locales=locales)
        with pytest.raises(errors.TemplateInvalid) as err:
            services.version_submit(version=broken, actor=editor, user=editor)
        assert any("gone.png answers 404" in p for p in err.value.details["problems"])
        locales[0]["body_html"] = locales[0]["body_html"].replace("gone.png", "ok.png")
        _, fine = _create(tenant, editor, template_key="t4", locales=locales)
        assert services.version_submit(version=fine, actor=editor, user=editor).status == Status.PENDING
    finally:
        server.shutdown()


def test_audit_entries_cannot_be_changed(tenant, editor):
    from django.db import DatabaseError, transaction

    _create(tenant, editor)
    entry = AuditEntry.objects.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
