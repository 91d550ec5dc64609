"""The lint in the review workflow: findings stored at submit, error findings block approval until
each failing rule is fixed or overridden with a reason (who, when, why — the approver sees it and the
audit log keeps it)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from templates_app.models import TemplateVersion

TemplateLintFailed = errors.error_class(
    "COMMS_TEMPLATE_LINT_FAILED", 422,
    "Accessibility lint errors block approval: fix them, or override each failing rule with a reason.")
LintOverrideRefused = errors.error_class(
    "COMMS_LINT_OVERRIDE_REFUSED", 409, "Lint overrides are recorded on a version pending review.")
OVERRIDE_PERMISSIONS = ("templates_app.change_templateversion", "templates_app.approve_template")


def lint_blocking(version: TemplateVersion) -> list[dict[str, Any]]:
    """Error findings whose rule has no override: what stands between the version and approval."""
    overridden = {o.get("rule") for o in version.lint_overrides or []}
    return [f for f in version.lint_findings or [] if f.get("level") == "error" and f.get("rule") not in overridden]


def lint_summary(version: TemplateVersion) -> dict[str, Any]:
    """The stored lint result as the API returns it and the admin shows it."""
    findings = list(version.lint_findings or [])
    return {"findings": findings, "overrides": list(version.lint_overrides or []),
            "errors": sum(f.get("level") == "error" for f in findings),
            "warnings": sum(f.get("level") == "warning" for f in findings),
            "blocking": sorted({f["rule"] for f in lint_blocking(version)})}


def lint_require_clear(version: TemplateVersion) -> None:
    """Raise TemplateLintFailed while an error-level finding lacks an override (called by approve)."""
    blocking = lint_blocking(version)
    if blocking:
        rules = sorted({f["rule"] for f in blocking})
        raise TemplateLintFailed(f"v{version.version} has accessibility errors ({', '.join(rules)}): fix them, or "
                                 "override each rule with a reason.", details={"rules": rules, "findings": blocking})


@transaction.atomic
def version_lint_override(*, version: TemplateVersion, rule: str, reason: str, actor: Any,
                          user: Any = None) -> TemplateVersion:
    """Record (or replace) the override of one failing rule. Only error rules that fired can be
    overridden, only while the version waits for review (a resubmission lints afresh and clears them)."""
    version = TemplateVersion.objects.select_for_update().select_related("template").get(pk=version.pk)
    if user is not None and not any(user.has_perm(p) for p in OVERRIDE_PERMISSIONS):
        raise errors.Forbidden("Overriding a lint rule needs the editor or approver role.")
    if version.status != TemplateVersion.Status.PENDING:
        raise LintOverrideRefused(f"v{version.version} is {version.status}; overrides are recorded while it is "
                                  "pending review.")
    reason = (reason or "").strip()
    if not reason:
        raise errors.ValidationFailed("Say why the rule does not apply (a reason is required).",
                                      details={"field": "reason"})
    failing = {f.get("rule") for f in version.lint_findings or [] if f.get("level") == "error"}
    if rule not in failing:
        raise errors.ValidationFailed(f"{rule!r} is not an error finding of v{version.version}; only failing error "
                                      "rules can be overridden.", details={"field": "rule", "failing": sorted(failing)})
    entry = audit_record(actor=actor if actor is not None else user, action="template.lint_override", target=version,
                         reason=reason, diff={"rule": rule}, tenant=version.template.tenant)
    override = {"rule": rule, "reason": reason[:1000], "by": entry.actor_label, "by_id": entry.actor_id,
                "at": timezone.now().isoformat()}
    version.lint_overrides = [o for o in version.lint_overrides or [] if o.get("rule") != rule] + [override]
    version.save(update_fields=["lint_overrides"])
    return version
