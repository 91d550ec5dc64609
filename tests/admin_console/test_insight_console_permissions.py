"""Who may see /console/engagement/ and acknowledge an anomaly from /console/anomalies/."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from admin_console.roles import roles_ensure
from comms.models import AuditEntry
from tracking.models import AnomalyAlert

pytestmark = pytest.mark.django_db


def _user(role: str):
    roles_ensure()
    User = get_user_model()
    if role == "superuser":
        return User.objects.create_superuser("root", "root@example.com", "pw")
    user = User.objects.create_user(role.lower(), f"{role.lower()}@example.com", "pw", is_staff=True)
    if role.startswith("Comms"):
        user.groups.add(Group.objects.get(name=role))
    return user


def _alert() -> AnomalyAlert:
    from django.utils import timezone

    return AnomalyAlert.objects.create(series="failure_rate:twilio", kind="failure_rate", hour=timezone.now(),
                                       observed=0.3, baseline=0.01, sigma=0.01, z=29, volume=400)


@pytest.mark.parametrize("role, page, ack", [
    ("staff-without-role", 403, 403), ("CommsViewer", 200, 403), ("CommsApprover", 200, 403),
    ("superuser", 200, 302),
])
def test_roles_see_the_engagement_page_and_only_holders_of_the_change_permission_acknowledge(client, role, page, ack):
    client.force_login(_user(role))
    assert client.get("/console/engagement/").status_code == page
    alert = _alert()
    assert client.get(f"/console/anomalies/{alert.id}/acknowledge").status_code in (403, 405)  # POST only
    response = client.post(f"/console/anomalies/{alert.id}/acknowledge")
    assert response.status_code == ack
    alert.refresh_from_db()
    assert (alert.acknowledged_by == "root") == (ack == 302)
    assert AuditEntry.objects.filter(action="anomaly.acknowledge").exists() == (ack == 302)
    if ack == 302:  # again, and an id that does not exist: back to the list, nothing changes
        assert client.post(f"/console/anomalies/{alert.id}/acknowledge").status_code == 302
        assert client.post("/console/anomalies/987654/acknowledge").status_code == 302
        assert AuditEntry.objects.filter(action="anomaly.acknowledge").count() == 1
        assert "&#10003; root" in client.get("/console/anomalies/").content.decode()


def test_an_unknown_tenant_filter_shows_every_tenant(client):
    client.force_login(_user("superuser"))
    response = client.get("/console/engagement/?tenant=not-a-tenant")
    assert response.status_code == 200 and "0 recipients scored" in response.content.decode()
