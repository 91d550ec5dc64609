"""Spam scores in the template workflow with a real spamd: the preview API, the verdict stored at
submit and shown to the approver, and spamd down (issue 19, item 6)."""

from __future__ import annotations

import pytest

from comms.devserver.embedded import free_port
from templates_app import services as template_services
from templates_app.models import TemplateVersion
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def spamd_down(settings):
    settings.COMMS_SPAMD_HOST, settings.COMMS_SPAMD_PORT, settings.COMMS_SPAMD_TIMEOUT = "127.0.0.1", free_port(), 2.0


def test_preview_api_carries_the_verdict_and_says_so_when_spamd_is_down(admin_api, spamd, settings):
    assert admin_api.post("/api/v1/templates", order_template_data(), format="json").status_code == 201
    preview = admin_api.post("/api/v1/templates/order_confirmation/preview", {}, format="json").json()
    verdict = preview["channels"]["email"]["spam"]
    assert verdict["available"] is True and isinstance(verdict["score"], float)
    assert verdict["rules"] and {"name", "score", "description"} <= set(verdict["rules"][0])
    assert "spam" not in preview["channels"]["sms"]
    settings.COMMS_SPAMD_PORT = free_port()  # spamd goes away
    down = admin_api.post("/api/v1/templates/order_confirmation/preview", {}, format="json")
    assert down.status_code == 200
    assert down.json()["channels"]["email"]["spam"]["label"] == "spam check unavailable"


def test_submit_stores_the_score_and_the_approver_sees_it(tenant, editor, spamd, admin_client):
    template = template_services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data())
    version = template.versions.get()
    template_services.version_submit(version=version, actor=editor, user=editor)
    version = TemplateVersion.objects.get(pk=version.pk)
    assert version.status == "pending_review"
    assert version.spam_report["available"] is True and version.spam_score == version.spam_report["score"]
    page = admin_client.get(f"/admin/templates_app/templateversion/{version.pk}/change/").content.decode()
    assert "Spam score at submit" in page and f"spam score {version.spam_score:.1f}" in page


def test_submit_goes_ahead_when_spamd_is_down(tenant, editor, spamd_down):
    template = template_services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data())
    version = template_services.version_submit(version=template.versions.get(), actor=editor, user=editor)
    version.refresh_from_db()
    assert version.status == "pending_review" and version.spam_score is None
    assert version.spam_report["available"] is False
