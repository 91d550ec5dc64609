"""Every state-changing admin and API action leaves an AuditEntry (actor, action, target, IP)."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from comms.models import AuditEntry
from delivery.models import Message
from delivery.services import SendSpec, message_enqueue
from templates_app import services
from tests.admin_console.test_permissions import make_user
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.COMMS_ASSET_CHECK = False
    settings.COMMS_TEST_SEND_ALLOWLIST = ["qa@example.com"]


def actions() -> list[tuple[str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "actor_label"))


def test_admin_actions_are_audited(client, tenant):
    editor, approver, ops = make_user("CommsEditor"), make_user("CommsApprover"), make_user("superuser", "ops")
    client.force_login(editor)
    client.post("/admin/templates_app/template/add/", {
        "tenant": str(tenant.pk), "template_key": "promo", "name": "Promo", "category": "marketing",
        "channels": "email", "default_locale": "en-US", "sms_segment_cap": 3, "sms_overflow": "refuse"})
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data={
        **order_template_data(), "experiment": {"name": "x", "variants": [{"key": "A", "weight": 1},
                                                                           {"key": "B", "weight": 1}]}})
    version = template.versions.get()
    client.post(f"/admin/templates_app/templateversion/{version.pk}/test-send/",
                {"test_address": "qa@example.com", "test_channel": "email"})
    client.post(f"/admin/templates_app/templateversion/{version.pk}/workflow/submit/")
    client.force_login(approver)
    client.post(f"/admin/templates_app/templateversion/{version.pk}/workflow/approve/", {"approve_notes": "ok"})
    client.post(f"/admin/templates_app/templateversion/{version.pk}/weights/",
                {"weight_A": "3", "weight_B": "1", "weights_reason": "ramp A"})
    client.force_login(ops)
    queued, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="a@example.com", subject="s", body="b"))
    dead, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="d@example.com", subject="s", body="b"))
    Message.objects.filter(pk=dead.pk).update(status="dead")
    client.post("/admin/delivery/message/", {"action": "cancel_selected", "_selected_action": [str(queued.pk)]})
    client.post("/admin/delivery/message/", {"action": "requeue_selected", "_selected_action": [str(dead.pk)]})

    done = actions()
    for expected in [("template.create", "commseditor"), ("template.test_send", "commseditor"),
                     ("template.submit", "commseditor"), ("template.approve", "commsapprover"),
                     ("template.activate", "commsapprover"), ("template.experiment_weights", "commsapprover"),
                     ("message.cancel", "ops"), ("message.requeue", "ops")]:
        assert expected in done, expected
    weights = AuditEntry.objects.get(action="template.experiment_weights")
    assert weights.diff == {"weights": [{"A": 1, "B": 1}, {"A": 3.0, "B": 1}]} and weights.reason == "ramp A"
    assert weights.ip == "127.0.0.1"
    cancel = AuditEntry.objects.get(action="message.cancel")
    assert cancel.target_id == str(queued.pk) and cancel.diff == {"status": ["queued", "cancelled"]}


def test_api_actions_are_audited(admin_api, tenant):
    assert admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json").status_code == 201
    assert admin_api.put("/api/v1/recipients/u-1", {"email": "u1b@example.com"}, format="json").status_code == 200
    assert admin_api.post("/api/v1/recipients/u-1/devices", {"token": "tok-" + "x" * 40, "platform": "ios"},
                          format="json").status_code == 201
    assert admin_api.post("/api/v1/devices/unregister", {"token": "tok-" + "x" * 40},
                          format="json").status_code == 200
    message = admin_api.post("/api/v1/messages", {"channel": "email", "to": "z@example.com", "subject": "s",
                                                  "body": "b", "scheduled_for": "2099-01-01T00:00:00Z"},
                             format="json").json()
    assert admin_api.delete(f"/api/v1/messages/{message['id']}").status_code == 200
    Message.objects.filter(pk=message["id"]).update(status="dead")
    assert admin_api.post(f"/api/v1/messages/{message['id']}/requeue").status_code == 200
    created = admin_api.post("/api/v1/templates", order_template_data(), format="json")
    assert created.status_code == 201, created.json()
    done = {a for a, _ in actions()}
    assert {"recipient.create", "recipient.update", "device.register", "device.unregister", "message.cancel",
            "message.requeue", "template.create"} <= done
    assert all(label.startswith("api-key:") for _, label in actions())


def test_audit_log_is_append_only_and_exports_csv(client, tenant):
    viewer = make_user("CommsViewer", "auditor")
    entry = AuditEntry.objects.create(actor_label="someone", action="template.approve", target_type="x",
                                      target_id="1", target_label="=cmd|' /C calc'!A0", reason="ok")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE admin_console_auditentry SET reason = 'changed' WHERE id = %s", [entry.pk])
    client.force_login(viewer)
    listing = client.get("/admin/comms/auditentry/?action=template.approve")
    assert listing.status_code == 200 and "Export these entries as CSV" in listing.content.decode()
    response = client.get("/admin/comms/auditentry/export.csv?action=template.approve")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["at", "actor_label", "action"]
    assert rows[1][2] == "template.approve" and rows[1][5].startswith("'=")  # no formula injection
    assert client.get("/admin/comms/auditentry/export.csv?action=nothing").status_code == 200
