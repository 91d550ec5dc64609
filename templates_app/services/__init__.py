"""Template use cases; other apps import from here."""

from templates_app.services.experiments import experiment_weights_set
from templates_app.services.lifecycle import (
    template_create,
    template_edit,
    template_preview,
    version_activate,
    version_approve,
    version_request_changes,
    version_submit,
    version_validate,
)
from templates_app.quality.service import lint_summary, version_lint_override
from templates_app.services.render import (
    SendRender,
    active_version,
    artifact_store,
    check_variables,
    render_for_send,
    schema_validator,
    variable_errors,
    version_validator,
)

__all__ = [
    "SendRender", "active_version", "artifact_store", "check_variables", "experiment_weights_set", "render_for_send",
    "schema_validator",
    "template_create", "template_edit", "template_preview", "variable_errors", "version_activate",
    "version_approve", "version_request_changes", "version_submit", "version_validate", "version_validator",
    "lint_summary", "version_lint_override",
]
