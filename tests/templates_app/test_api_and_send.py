"""Templates through the API, and sends that name a template (single and bulk)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import storages

from delivery.models import Message
from delivery.services import drain_all
from tests.templates_app.fixtures import order_template_data, variables

pytestmark = pytest.mark.django_db


def _header(value: str) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(value)))


def test_create_preview_edit_submit_via_api(admin_api):
    response = admin_api.post("/api/v1/templates", order_template_data(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["active_version"] is None and body["versions"][0]["status"] == "draft"
    assert sorted(body["versions"][0]["locales"]) == ["de", "en-US"]

    preview = admin_api.post("/api/v1/templates/order_confirmation/preview", {}, format="json").json()
    channels = preview["channels"]
    assert channels["email"]["subject"] == "Order A-1001 confirmed, Ada"
    assert "Hello Ada" in channels["email"]["html"] and "Hello Ada" in channels["email"]["text"]
    assert channels["sms"]["encoding"] == "GSM-7" and channels["sms"]["segments"] == 1
    assert channels["push"] == {"problems": [], "title": "Order A-1001", "body": "Total €1,234.50"}
    assert channels["in_app"]["content"]["link"] == "https://shop.example.com/o/A-1001"
    german = admin_api.post("/api/v1/templates/order_confirmation/preview", {"locale": "de-AT"}, format="json").json()
    assert german["locale"] == "de" and german["channels"]["push"]["body"] == "Summe 1.234,50\xa0€"
    missing = admin_api.post("/api/v1/templates/order_confirmation/preview",
                             {"variables": {"user": {"first_name": "X"}}}, format="json").json()
    assert any("order" in p for p in missing["variable_problems"])

    bad = admin_api.put("/api/v1/templates/order_confirmation", {"locales": [
        {"locale": "en-US", "subject": "ok", "body_html": "<p>{{#each items}}</p>"}]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "COMMS_TEMPLATE_INVALID"
    assert bad.json()["details"]["line"] == 1 and bad.json()["details"]["part"] == "body_html"

    assert admin_api.post("/api/v1/templates/order_confirmation/submit").status_code == 200
    detail = admin_api.get("/api/v1/templates/order_confirmation").json()
    assert detail["versions"][0]["status"] == "pending_review"
    again = admin_api.post("/api/v1/templates", order_template_data(), format="json")
    assert again.status_code == 409 and again.json()["code"] == "COMMS_TEMPLATE_EXISTS"


def test_send_with_a_template_renders_stores_and_sends(api, tenant, make_live, smtp_sink):
    template = make_live(tenant)
    api_response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com",
                                                 "template": "order_confirmation", "variables": variables(),
                                                 "locale": "de-CH"}, format="json")
    assert api_response.status_code == 202, api_response.content
    message = Message.objects.get(id=api_response.json()["id"])
    assert message.template_version == template.active_version and message.locale == "de"
    assert message.subject == "Bestellung A-1001 bestätigt"
    artifact = json.loads(storages["artifacts"].open(message.artifact).read())
    assert artifact["template"] == "order_confirmation" and artifact["template_version"] == 1
    assert artifact["subject"] == message.subject and "Hallo Ada" in artifact["body_html"]
    drain_all()
    [mail] = smtp_sink.messages
    assert _header(mail["Subject"]) == "Bestellung A-1001 bestätigt"
    assert (mail["X-Template-Name"], mail["X-Template-Version"]) == ("order_confirmation", "1")
    html = [p for p in mail.walk() if p.get_content_type() == "text/html"][0].get_payload(decode=True).decode()
    assert "Hallo Ada" in html


def test_send_with_missing_or_bad_variables_is_refused(api, tenant, make_live):
    make_live(tenant)
    data = variables()
    del data["user"]
    response = api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com",
                                             "template": "order_confirmation", "variables": data}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "COMMS_TEMPLATE_MISSING_VAR"
    assert response.json()["details"] == {"variable": "user"}
    data = variables(items="three")
    response = api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com",
                                             "template": "order_confirmation", "variables": data}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_TEMPLATE_BAD_VAR"
    assert Message.objects.count() == 0


def test_inactive_template_is_not_sendable(api, admin_api):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    response = api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com",
                                             "template": "order_confirmation", "variables": variables()}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_TEMPLATE_NOT_FOUND"


def test_bulk_with_a_template_renders_each_row_with_its_variant(api, admin_api, tenant, make_live, smtp_sink):
    make_live(tenant, experiment={"name": "subj", "variants": [
        {"key": "A", "weight": 50, "subject": "A {{order.id}}"}, {"key": "B", "weight": 50, "subject": "B {{order.id}}"}]})
    admin_api.put("/api/v1/recipients/u-de", {"email": "de@example.com", "locale": "de-DE"}, format="json")
    recipients = [{"to": f"r{i}@example.com", "variables": variables(order={**variables()["order"], "id": f"O-{i}"})}
                  for i in range(40)]
    recipients.append({"recipient_id": "u-de", "variables": variables()})
    bad = [*recipients, {"to": "x@example.com", "variables": {"user": {}}}]
    response = api.post("/api/v1/messages/bulk", {"channel": "email", "template": "order_confirmation",
                                                  "recipients": bad}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_TEMPLATE_MISSING_VAR"
    assert response.json()["details"]["errors"][0]["index"] == 41
    response = api.post("/api/v1/messages/bulk", {"channel": "email", "template": "order_confirmation",
                                                  "recipients": recipients}, format="json")
    assert response.status_code == 202, response.content
    assert drain_all().sent == 41
    subjects = {m["To"]: _header(m["Subject"]) for m in smtp_sink.messages}
    assert {m["X-Template-Version"] for m in smtp_sink.messages} == {"1"}
    assert subjects["r7@example.com"].endswith("O-7")
    assert {s.split()[0] for s in subjects.values()} == {"A", "B"}  # the variant overrides every locale
    rows = Message.objects.filter(batch_id=response.json()["batch_id"])
    assert all(m.artifact and m.variant in ("A", "B") for m in rows)
    german = rows.get(recipient_address="de@example.com")
    assert german.locale == "de-DE"
    assert json.loads(storages["artifacts"].open(german.artifact).read())["locale"] == "de"


def test_in_app_from_a_template_keeps_its_rendered_json(admin_api, tenant, make_live):
    from delivery.models import InAppNotification

    make_live(tenant)
    admin_api.put("/api/v1/recipients/u-9", {"email": "u9@example.com"}, format="json")
    response = admin_api.post("/api/v1/messages", {"channel": "in_app", "recipient_id": "u-9",
                                                   "template": "order_confirmation", "variables": variables()},
                              format="json")
    assert response.status_code == 202, response.content
    drain_all()
    item = InAppNotification.objects.get()
    assert (item.title, item.body, item.deep_link) == ("Order A-1001", "Thanks Ada", "https://shop.example.com/o/A-1001")
