"""The lint in the version's admin page: the findings (stored at submit, live for a draft), the
overrides with who/when/why for the approver, and the override form's POST handler.

The form controls sit inside the change page's own form and post with ``formaction`` (as the
workflow buttons do), so the page's CSRF token travels and no script is needed (our CSP)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from comms import errors
from templates_app.models import TemplateVersion
from templates_app.quality.lint import lint_version
from templates_app.quality.service import OVERRIDE_PERMISSIONS, lint_summary, version_lint_override


def lint_report_html(version: TemplateVersion):
    """Findings table, overrides and (for a version pending review with failing rules) the override form."""
    if version.status == TemplateVersion.Status.DRAFT:
        version.lint_findings = lint_version(version)  # live for the author; stored at submit
        caption = "Live check of this draft (stored when submitted)"
    else:
        caption = "Checked at submit"
    summary = lint_summary(version)
    overridden = {o["rule"]: o for o in summary["overrides"]}
    if not summary["findings"]:
        return format_html('<div class="comms-lint" data-errors="0" data-blocking=""><p>{}: no findings.</p></div>',
                           caption)

    def row_class(finding: dict) -> str:
        if finding["level"] == "error":
            return "lint-overridden" if finding["rule"] in overridden else "lint-error"
        return "lint-warning"

    rows = format_html_join("", '<tr class="{}" data-rule="{}"><td>{}</td><td><code>{}</code></td><td>{}</td>'
                                "<td><code>{}</code></td><td>{}</td></tr>", (
        (row_class(f), f["rule"], f["level"] + (" (overridden)" if f["rule"] in overridden and f["level"] == "error"
                                                else ""), f["rule"], f["locale"], f["element"], f["message"])
        for f in summary["findings"]))
    overrides = format_html_join("", '<li data-rule="{}"><b>{}</b> overridden by {} at {}: “{}”</li>', (
        (o["rule"], o["rule"], o["by"], o["at"][:16].replace("T", " "), o["reason"]) for o in summary["overrides"]))
    blocking = ", ".join(summary["blocking"])
    head = format_html('<p><b>{}: {} error(s), {} warning(s).</b> {}</p>', caption, summary["errors"],
                       summary["warnings"], format_html('<span class="lint-blocking">Approval blocked by: {}</span>',
                                                        blocking) if blocking else "")
    form = ""
    failing = sorted({f["rule"] for f in summary["findings"] if f["level"] == "error"})
    if version.status == TemplateVersion.Status.PENDING and failing:
        options = format_html_join("", '<option value="{}">{}</option>', ((r, r) for r in failing))
        form = format_html(
            '<div class="comms-lint-override"><label for="lint_rule">Override rule</label> '
            '<select id="lint_rule" name="lint_rule">{}</select> '
            '<input type="text" name="lint_reason" maxlength="1000" size="40" placeholder="Reason (required)" '
            'aria-label="Reason for the override"> '
            '<button type="submit" class="button" name="lint_override" formaction="{}">Override</button></div>',
            options, reverse("admin:templates_app_templateversion_lint_override", args=[version.pk]))
    return format_html(
        '<div class="comms-lint" data-errors="{}" data-blocking="{}">{}<div class="comms-lint-scroll">'
        '<table class="comms-lint-findings"><thead><tr><th>level</th><th>rule</th><th>locale</th><th>element</th>'
        "<th>finding</th></tr></thead><tbody>{}</tbody></table></div>{}{}</div>",
        summary["errors"], blocking, head, rows,
        format_html('<ul class="comms-lint-overrides">{}</ul>', overrides) if summary["overrides"] else "", form)


@require_POST
def lint_override_view(request: HttpRequest, pk: int):
    """Record one override from the admin form, then back to the version's page."""
    version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
    back = HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[pk]))
    if not any(request.user.has_perm(p) for p in OVERRIDE_PERMISSIONS):
        messages.error(request, "Refused: overriding a lint rule needs the editor or approver role.")
        return back
    rule = request.POST.get("lint_rule", "")
    try:
        version_lint_override(version=version, rule=rule, reason=request.POST.get("lint_reason", ""),
                              actor=request.user, user=request.user)
    except errors.CommsError as exc:
        messages.error(request, f"{version}: {exc.message}")
    else:
        messages.success(request, f"{version}: {rule} overridden; the approver sees your reason.")
    return back
