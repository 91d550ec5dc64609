"""Who may use the A/B admin views: a viewer cannot decide a campaign's winner (it needs the permission to
change campaigns); a staff member without template view rights does not see an experiment's results."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from comms.models import AuditEntry
from delivery.services import drain_all
from tests.browser import admin_staff
from tests.comms.test_campaign_abtest import AB, _start, ab_template  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_viewer_cannot_decide_and_a_superuser_can(admin_api, ab_template, smtp_sink):  # noqa: F811
    campaign = _start(admin_api, AB)
    drain_all()
    url = f"/admin/campaigns/campaign/{campaign.pk}/abtest-decide/"
    viewer = _client(admin_staff("vera", "CommsViewer"))
    page = viewer.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200 and b"campaign-ab" in page.content and b'id="ab-decide"' not in page.content
    refused = viewer.post(url, {"ab_variant": "B", "ab_reason": "I like it"}, follow=True)  # the view checks too
    assert b"needs the permission to change campaigns" in refused.content
    campaign.refresh_from_db()
    assert "winner" not in campaign.ab_test and not AuditEntry.objects.filter(action="campaign.abtest_winner").exists()
    assert viewer.get(url).status_code == 405  # POST only
    root = _client(get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw"))
    done = root.post(url, {"ab_variant": "B", "ab_reason": "brand"}, follow=True)
    assert b"winner B (forced: brand)" in done.content
    assert root.post("/admin/campaigns/campaign/not-a-uuid/abtest-decide/", {}, follow=True).status_code == 200


def test_experiment_results_need_the_template_view_permission(ab_template):  # noqa: F811
    version = ab_template.active_version
    url = f"/admin/templates_app/templateversion/{version.pk}/results/"
    staff = get_user_model().objects.create_user("sam", "sam@example.com", "sam-secret-pw", is_staff=True)
    assert _client(staff).get(url).status_code == 403
    viewer = _client(admin_staff("vic", "CommsViewer"))
    page = viewer.get(url)
    assert page.status_code == 200 and b'id="experiment-results"' in page.content
    assert viewer.get(f"/admin/templates_app/templateversion/{version.pk + 999}/results/").status_code == 404
