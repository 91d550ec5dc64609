"""The lint in the review workflow: findings stored at submit, errors block approval with a typed
error, a per-rule override with a reason (audited, shown to the approver) lets approval proceed; the
API returns findings from submit and validate (issue 20, item 1)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from comms.models import AuditEntry
from templates_app import services
from templates_app.models import TemplateVersion
from templates_app.quality.service import LintOverrideRefused, TemplateLintFailed
from tests.browser import admin_staff
from tests.templates_app.lint_fixtures import GOOD_BODY, SAMPLE, SCHEMA, TEXT, email_template, mjml

pytestmark = pytest.mark.django_db

LOW_CONTRAST = mjml(GOOD_BODY + '<mj-text color="#aaaaaa">Small grey terms</mj-text>')
BAD_CSS = mjml(GOOD_BODY + '<mj-raw><p style="color: #12345; font-size: 14px">Odd colour</p></mj-raw>')


@pytest.fixture
def editor(editor):
    """The content editor role: may change versions (and so override a lint rule with a reason)."""
    editor.user_permissions.add(Permission.objects.get(content_type__app_label="templates_app",
                                                       codename="change_templateversion"))
    return get_user_model().objects.get(pk=editor.pk)


def test_users_without_a_template_role_cannot_override(tenant, editor, approver, django_user_model):
    version = submitted(tenant, editor, LOW_CONTRAST)
    visitor = django_user_model.objects.create_user("visitor", "v@example.com", "pw", is_staff=True)
    with pytest.raises(Exception) as refused:
        services.version_lint_override(version=version, rule="A11Y_CONTRAST", reason="x", actor=visitor, user=visitor)
    assert refused.value.code == "COMMS_FORBIDDEN"


def submitted(tenant, editor, body_html: str) -> TemplateVersion:
    template = email_template(tenant, editor, body_html=body_html)
    return services.version_submit(version=template.versions.get(), actor=editor, user=editor)


def test_errors_block_approval_until_the_rule_is_overridden(tenant, editor, approver):
    version = submitted(tenant, editor, LOW_CONTRAST)
    assert [f["rule"] for f in version.lint_findings if f["level"] == "error"] == ["A11Y_CONTRAST"]
    with pytest.raises(TemplateLintFailed) as refused:
        services.version_approve(version=version, user=approver)
    assert refused.value.code == "COMMS_TEMPLATE_LINT_FAILED" and refused.value.details["rules"] == ["A11Y_CONTRAST"]
    assert not version.reviews.exists()  # nothing recorded by the refused approval

    services.version_lint_override(version=version, rule="A11Y_CONTRAST", reason="Legal footer, grey by brand rule",
                                   actor=editor, user=editor)
    version.refresh_from_db()
    override = version.lint_overrides[0]
    assert override["rule"] == "A11Y_CONTRAST" and override["by"] == "editor" and override["at"]
    audit = AuditEntry.objects.get(action="template.lint_override")
    assert audit.actor == editor and audit.reason == "Legal footer, grey by brand rule"
    assert audit.diff == {"rule": "A11Y_CONTRAST"} and audit.target_id == str(version.pk)

    version = services.version_approve(version=version, user=approver)
    version.template.refresh_from_db()
    assert version.status == "approved" and version.template.active_version_id == version.pk


def test_clean_version_approves_and_warnings_never_block(tenant, editor, approver):
    version = submitted(tenant, editor, mjml(GOOD_BODY + "<mj-table><tr><td>1</td></tr></mj-table>", bg=""))
    assert {f["level"] for f in version.lint_findings} == {"warning"}
    assert services.version_approve(version=version, user=approver).status == "approved"
    assert AuditEntry.objects.get(action="template.submit", target_id=str(version.pk)).diff["lint"]["errors"] == 0


def test_override_needs_a_reason_a_failing_rule_and_a_pending_version(tenant, editor, approver):
    version = submitted(tenant, editor, LOW_CONTRAST)
    with pytest.raises(Exception) as no_reason:
        services.version_lint_override(version=version, rule="A11Y_CONTRAST", reason="  ", actor=editor, user=editor)
    assert no_reason.value.code == "COMMS_VALIDATION_ERROR"
    with pytest.raises(Exception) as not_failing:
        services.version_lint_override(version=version, rule="A11Y_IMG_ALT", reason="x", actor=editor, user=editor)
    assert not_failing.value.code == "COMMS_VALIDATION_ERROR" and not_failing.value.details["failing"] == [
        "A11Y_CONTRAST"]
    with pytest.raises(Exception) as warning_rule:  # warnings never block, so there is nothing to override
        services.version_lint_override(version=version, rule="A11Y_TABLE_ROLE", reason="x", actor=editor, user=editor)
    assert warning_rule.value.code == "COMMS_VALIDATION_ERROR"
    services.version_request_changes(version=version, user=approver, notes="Darker grey, please")
    with pytest.raises(LintOverrideRefused):
        services.version_lint_override(version=version, rule="A11Y_CONTRAST", reason="x", actor=editor, user=editor)
    assert not AuditEntry.objects.filter(action="template.lint_override").exists()


def test_resubmission_lints_afresh_and_clears_overrides(tenant, editor, approver):
    version = submitted(tenant, editor, LOW_CONTRAST)
    services.version_lint_override(version=version, rule="A11Y_CONTRAST", reason="brand grey", actor=editor,
                                   user=editor)
    services.version_request_changes(version=version, user=approver, notes="Fix the grey")
    services.template_edit(template=version.template, actor=editor, user=editor, data={
        "locales": [{"locale": "en", "subject": "Shipped", "body_html": mjml(GOOD_BODY), "body_text": TEXT}]})
    version = services.version_submit(version=version, actor=editor, user=editor)
    assert version.lint_overrides == [] and not [f for f in version.lint_findings if f["level"] == "error"]


def test_bad_css_is_a_warning_and_the_submit_goes_through(tenant, editor, approver):
    version = submitted(tenant, editor, BAD_CSS)
    css = [f for f in version.lint_findings if f["rule"] == "CSS_UNPARSEABLE"]
    assert css and css[0]["level"] == "warning" and "#12345" in css[0]["message"]
    assert services.version_approve(version=version, user=approver).status == "approved"


def test_non_email_templates_have_nothing_to_lint(tenant, editor):
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data={
        "template_key": "sms_only", "name": "SMS", "channels": ["sms"], "variables_schema": SCHEMA,
        "sample_variables": SAMPLE, "locales": [{"locale": "en-US", "sms_text": "Hi {{name}}"}]})
    version = services.version_submit(version=template.versions.get(), actor=editor, user=editor)
    assert version.lint_findings == []


# --- API ----------------------------------------------------------------------------------------
def api_template(admin_api, body_html: str) -> None:
    response = admin_api.post("/api/v1/templates", {
        "template_key": "lint_api", "name": "Lint API", "channels": ["email"], "default_locale": "en",
        "variables_schema": SCHEMA, "sample_variables": SAMPLE,
        "locales": [{"locale": "en", "subject": "Shipped, {{name}}", "body_html": body_html, "body_text": TEXT}]},
        format="json")
    assert response.status_code == 201, response.content


def test_api_validate_submit_and_override_return_findings(admin_api, approver):
    api_template(admin_api, LOW_CONTRAST)
    dry = admin_api.post("/api/v1/templates/lint_api/validate", {}, format="json")
    assert dry.status_code == 200
    body = dry.json()
    assert body["status"] == "draft" and body["problems"] == [] and body["lint"]["blocking"] == ["A11Y_CONTRAST"]
    finding = next(f for f in body["lint"]["findings"] if f["rule"] == "A11Y_CONTRAST")
    assert set(finding) == {"rule", "level", "locale", "element", "message"} and finding["level"] == "error"
    assert TemplateVersion.objects.get().lint_findings == []  # a dry run stores nothing

    submit = admin_api.post("/api/v1/templates/lint_api/submit").json()
    assert submit["lint"]["errors"] == 1 and submit["lint"]["blocking"] == ["A11Y_CONTRAST"]

    missing = admin_api.post("/api/v1/templates/lint_api/lint-overrides", {"rule": "A11Y_CONTRAST", "reason": ""},
                             format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "COMMS_VALIDATION_ERROR"
    wrong = admin_api.post("/api/v1/templates/lint_api/lint-overrides", {"rule": "NOPE", "reason": "because"},
                           format="json")
    assert wrong.status_code == 400 and wrong.json()["details"]["failing"] == ["A11Y_CONTRAST"]
    done = admin_api.post("/api/v1/templates/lint_api/lint-overrides",
                          {"rule": "A11Y_CONTRAST", "reason": "Footer grey is the brand rule"}, format="json")
    assert done.status_code == 200, done.content
    lint = done.json()["lint"]
    assert lint["blocking"] == [] and lint["overrides"][0]["by"].startswith("api-key:")
    assert services.version_approve(version=TemplateVersion.objects.get(), user=approver).status == "approved"
    again = admin_api.post("/api/v1/templates/lint_api/lint-overrides", {"rule": "A11Y_CONTRAST", "reason": "x"},
                           format="json")
    assert again.status_code == 404 and again.json()["code"] == "COMMS_NOT_FOUND"  # nothing pending any more


def test_preview_api_lints_what_it_rendered(admin_api):
    api_template(admin_api, mjml(GOOD_BODY + '<mj-text><a href="{{url}}">click here</a></mj-text>'))
    email = admin_api.post("/api/v1/templates/lint_api/preview", {}, format="json").json()["channels"]["email"]
    assert [f["rule"] for f in email["lint"]] == ["A11Y_LINK_TEXT"] and email["lint"][0]["locale"] == "en"
    long = {**SAMPLE, "name": "A" * 90}  # the subject is linted as rendered with these variables
    email = admin_api.post("/api/v1/templates/lint_api/preview", {"variables": long}, format="json").json()
    assert "A11Y_SUBJECT_LENGTH" in {f["rule"] for f in email["channels"]["email"]["lint"]}


def test_api_validate_rejects_unknown_fields_versions_and_scopes(admin_api, api):
    api_template(admin_api, mjml(GOOD_BODY))
    for path in ("validate", "lint-overrides"):  # a send/read key may preview, not dry-run or override
        refused = api.post(f"/api/v1/templates/lint_api/{path}", {"rule": "A11Y_CONTRAST", "reason": "x"},
                           format="json")
        assert refused.status_code == 403 and refused.json()["code"] == "COMMS_FORBIDDEN"
    assert admin_api.post("/api/v1/templates/lint_api/validate", {"version": 9}, format="json").json()["code"] == \
        "COMMS_NOT_FOUND"
    assert admin_api.post("/api/v1/templates/lint_api/validate", {"x": 1}, format="json").json()["code"] == \
        "COMMS_UNKNOWN_FIELD"
    assert admin_api.post("/api/v1/templates/lint_api/validate", {}, format="json").json()["lint"]["errors"] == 0


# --- admin --------------------------------------------------------------------------------------
def test_admin_shows_findings_and_the_override_to_the_approver(tenant, client):
    editor, approver = admin_staff("edith", "CommsEditor"), admin_staff("arthur", "CommsApprover")
    version = submitted(tenant, editor, LOW_CONTRAST)
    client.force_login(approver)
    url = f"/admin/templates_app/templateversion/{version.pk}/change/"
    page = client.get(url).content.decode()
    assert 'data-blocking="A11Y_CONTRAST"' in page and "Approval blocked by: A11Y_CONTRAST" in page
    refused = client.post(f"/admin/templates_app/templateversion/{version.pk}/workflow/approve/", follow=True)
    assert "accessibility errors (A11Y_CONTRAST)" in refused.content.decode()
    client.force_login(editor)
    client.post(f"/admin/templates_app/templateversion/{version.pk}/lint-override/",
                {"lint_rule": "A11Y_CONTRAST", "lint_reason": "Brand grey for legal text"})
    client.force_login(approver)
    page = client.get(url).content.decode()
    assert "overridden by edith" in page and "Brand grey for legal text" in page and 'data-blocking=""' in page
    client.post(f"/admin/templates_app/templateversion/{version.pk}/workflow/approve/")
    version.refresh_from_db()
    assert version.status == "approved"
