"""Template fixtures reused from the templates tests (live templates with experiments)."""

from tests.templates_app.conftest import _no_asset_fetch, approver, approver2, editor, make_live  # noqa: F401
