"""SendGrid, Mailgun and Postmark through django-anymail against loopback stand-ins of their send APIs."""

from __future__ import annotations

import pytest

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from comms.devserver.standins.esp import EspStandIn
from tests.templates_app.conftest import _no_asset_fetch, approver, approver2, editor, make_live  # noqa: F401
from tests.templates_app.fixtures import variables

pytestmark = pytest.mark.django_db
BACKENDS = {"sendgrid": "anymail.backends.sendgrid.EmailBackend", "mailgun": "anymail.backends.mailgun.EmailBackend",
            "postmark": "anymail.backends.postmark.EmailBackend"}


def _stand_in(kind: str) -> EspStandIn:
    stand_in = EspStandIn(kind)
    row = ChannelProvider(channel="email", name=kind, is_primary=True,
                          provider_class="delivery.providers.anymail_esp.AnymailProvider",
                          options={"backend": BACKENDS[kind], "from_email": "Shop <orders@mg.shop.example.com>"})
    row.credentials = {"backend_options": {"api_key" if kind != "postmark" else "server_token": stand_in.key,
                                           "api_url": stand_in.api_url, "requests_timeout": 2}}
    row.save()
    return stand_in


@pytest.fixture(params=sorted(BACKENDS))
def esp(request):
    stand_in = _stand_in(request.param)
    yield stand_in
    stand_in.close()


def _wire(esp: EspStandIn) -> dict:
    """(to, subject, headers) of the one request, whatever the ESP's format."""
    [request] = esp.requests
    if esp.kind == "sendgrid":
        body = request["json"]
        return {"to": body["personalizations"][0]["to"][0]["email"], "subject": body["subject"],
                "from": body["from"]["email"], "headers": body.get("headers", {}),
                "html": [c["value"] for c in body["content"] if c["type"] == "text/html"][0]}
    if esp.kind == "mailgun":
        form = request["form"]
        return {"to": form["to"][0], "subject": form["subject"][0], "from": form["from"][0],
                "headers": {k[2:]: v[0] for k, v in form.items() if k.startswith("h:")}, "html": form["html"][0],
                "path": request["path"]}
    body = request["json"]
    return {"to": body["To"], "subject": body["Subject"], "from": body["From"], "html": body["HtmlBody"],
            "headers": {h["Name"]: h["Value"] for h in body.get("Headers", [])}}


def test_email_goes_out_with_its_headers(api, esp):
    response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "Receipt",
                                             "body": "Thanks", "body_html": "<p>Hello Ada</p>"}, format="json")
    assert drain_all().sent == 1
    message = Message.objects.get(id=response.json()["id"])
    assert (message.status, message.provider) == (Status.SENT, esp.kind)
    assert message.provider_ref
    wire = _wire(esp)
    assert wire["to"] == "ada@example.com" and wire["subject"] == "Receipt"
    assert "orders@mg.shop.example.com" in wire["from"] and "Hello Ada" in wire["html"]
    assert {k.lower(): v for k, v in wire["headers"].items()}["x-comms-message-id"] == str(message.id)
    if esp.kind == "mailgun":
        assert wire["path"] == "/v3/mg.shop.example.com/messages"


@pytest.mark.parametrize("kind", ["mailgun"])
def test_template_email_names_its_template(api, tenant, make_live, kind):
    esp = _stand_in(kind)
    try:
        make_live(tenant)
        response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com",
                                                 "template": "order_confirmation", "variables": variables()},
                            format="json")
        assert drain_all().sent == 1
    finally:
        esp.close()
    wire = _wire(esp)
    assert wire["subject"] == "Order A-1001 confirmed, Ada"
    headers = {k.lower(): v for k, v in wire["headers"].items()}
    assert headers["x-comms-message-id"] == response.json()["id"]
    assert (headers["x-template-name"], headers["x-template-version"]) == ("order_confirmation", "1")


ERRORS = {
    "sendgrid": [(400, {"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.0.to"}]},
                  "permanent", "400"),
                 (429, {"errors": [{"message": "too many requests"}]}, "transient", "429"),
                 (503, b"Service Unavailable", "transient", "503")],
    "mailgun": [(400, {"message": "to parameter is not a valid address. please check documentation"},
                 "permanent", "400"),
                (429, {"message": "Too many requests"}, "transient", "429"),
                (500, {"message": "Internal"}, "transient", "500")],
    "postmark": [(422, {"ErrorCode": 300, "Message": "Invalid 'To' address: 'ada@example.com'."},
                  "permanent", "refused"),
                 (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, "transient", "429"),
                 (500, {"ErrorCode": 500, "Message": "Internal Server Error"}, "transient", "500")],
}


def _send(api, to="ada@example.com"):
    response = api.post("/api/v1/messages", {"channel": "email", "to": to, "subject": "Hi", "body": "Hello"},
                        format="json")
    return response.json()["id"]


def test_errors_are_classified(api, esp):
    cases = ERRORS[esp.kind]
    ids = []
    for status, body, _, _ in cases:
        esp.fail(status, body)
        ids.append(_send(api))
        drain_all()
    for message_id, (_, _, error_class, code) in zip(ids, cases):
        message = Message.objects.get(id=message_id)
        assert message.failure_code == code
        assert message.status == (Status.FAILED if error_class == "permanent" else Status.QUEUED)


def test_a_rejected_api_key_is_transient_and_counts_against_the_provider(api, esp):
    from delivery import health

    esp.key = "rotated"
    message = Message.objects.get(id=_send(api))
    drain_all()
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (Status.QUEUED, "401")
    assert health.snapshot(esp.kind)["consecutive_failures"] == 1


def test_an_unreachable_esp_fails_over(api, esp, smtp_sink):
    ChannelProvider.objects.filter(name=esp.kind).update(credentials_encrypted=_creds(esp, f"http://127.0.0.1:{free_port()}/"))
    ChannelProvider.objects.create(channel="email", name="relay", provider_class="delivery.providers.smtp.SmtpProvider",
                                   order=2)
    message = Message.objects.get(id=_send(api))
    drain_all()
    message.refresh_from_db()
    assert (message.status, message.provider) == (Status.SENT, "relay")
    assert len(smtp_sink.messages) == 1


def _creds(esp, url):
    from comms.crypto import encrypt_json

    key = "api_key" if esp.kind != "postmark" else "server_token"
    return encrypt_json({"backend_options": {key: esp.key, "api_url": url, "requests_timeout": 2}})
