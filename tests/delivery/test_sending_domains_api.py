"""/api/v1/sending-domains: CRUD, records, rotate, check; typed errors for bad input."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from delivery.deliverability.models import SendingDomain
from tests.delivery.deliverability_support import _fresh_keys, dns_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
URL = "/api/v1/sending-domains"


def test_create_list_detail_records_delete(admin_api, api, tenant, other_tenant, make_client):
    created = admin_api.post(URL, {"domain": "Bücher.Example."}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["domain"] == "xn--bcher-kva.example" and body["unicode_domain"] == "bücher.example"
    assert sorted(k["algorithm"] for k in body["keys"]) == ["ed25519", "rsa"]
    assert "private" not in created.content.decode().lower().replace("private_key", "")
    dkim_records = [r for r in body["records"] if "_domainkey" in r["name"]]
    assert len(dkim_records) == 2 and all(r["zone_line"].endswith('"') for r in dkim_records)
    assert api.get(URL).json()["results"][0]["domain"] == "xn--bcher-kva.example"
    by_name = api.get(f"{URL}/bücher.example")
    assert by_name.status_code == 200 and by_name.json()["id"] == body["id"]
    records = api.get(f"{URL}/{body['id']}/records").json()["records"]
    assert {r["type"] for r in records} >= {"TXT", "MX"}
    # Another tenant sees nothing of it.
    other = make_client(other_tenant, ["admin", "messages:read"])
    assert other.get(f"{URL}/{body['id']}").status_code == 404
    assert other.get(URL).json()["results"] == []
    assert api.delete(f"{URL}/{body['id']}").status_code == 403  # admin scope needed
    assert admin_api.delete(f"{URL}/{body['id']}").status_code == 204
    assert not SendingDomain.objects.exists()


@pytest.mark.parametrize("payload, code", [
    ({"domain": "not a domain"}, "COMMS_INVALID_DOMAIN"),
    ({"domain": "a@example.com"}, "COMMS_INVALID_DOMAIN"),
    ({"domain": "example"}, "COMMS_INVALID_DOMAIN"),
    ({"domain": "-x-.example.com"}, "COMMS_INVALID_DOMAIN"),
    ({"domain": "example.com", "private_key": "garbage", "selector": "s1"}, "COMMS_INVALID_KEY"),
    ({"domain": "example.com", "private_key": "-----BEGIN PRIVATE KEY-----\nZm9v\n-----END PRIVATE KEY-----",
      "selector": "s1"}, "COMMS_INVALID_KEY"),
    ({"domain": "example.com", "private_key": "x"}, "COMMS_VALIDATION_ERROR"),
    ({"domain": "example.com", "colour": "red"}, "COMMS_UNKNOWN_FIELD"),
    ({"domain": 5}, "COMMS_VALIDATION_ERROR"),
    ({}, "COMMS_VALIDATION_ERROR"),
])
def test_bad_input_is_a_typed_400(admin_api, payload, code):
    response = admin_api.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code and response.json()["message"]
    assert not SendingDomain.objects.exists()


def test_duplicate_is_409_and_unknown_ids_404(admin_api):
    assert admin_api.post(URL, {"domain": "example.com"}, format="json").status_code == 201
    again = admin_api.post(URL, {"domain": "EXAMPLE.com."}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "COMMS_DOMAIN_EXISTS"
    for ref in ("999", "99999999999999999999999", "nope..", "x" * 400):
        response = admin_api.get(f"{URL}/{ref}")
        assert response.status_code == 404 and response.json()["code"] == "COMMS_NOT_FOUND"


def test_import_ed25519_key(admin_api):
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    response = admin_api.post(URL, {"domain": "example.com", "private_key": pem, "selector": "Brevo1"}, format="json")
    assert response.status_code == 201, response.content
    assert [(k["selector"], k["algorithm"]) for k in response.json()["keys"]] == [("brevo1", "ed25519")]


def test_rotate_then_check_activates_published_keys(admin_api, dns_server):
    created = admin_api.post(URL, {"domain": "example.com"}, format="json").json()
    rotated = admin_api.post(f"{URL}/{created['id']}/rotate").json()
    states = sorted(k["state"] for k in rotated["keys"])
    assert states == ["active", "active", "pending", "pending"]
    for record in rotated["records"]:
        if record["type"] == "TXT":
            dns_server.zones.add_txt(record["name"], record["strings"])
    checked = admin_api.post(f"{URL}/example.com/check")
    assert checked.status_code == 200
    body = checked.json()
    assert body["check"]["results"]["dkim"]["status"] == "ok"
    assert sorted(k["state"] for k in body["keys"]) == ["active", "active", "retiring", "retiring"]
    assert body["check"]["results"]["mx"]["status"] == "warn"
