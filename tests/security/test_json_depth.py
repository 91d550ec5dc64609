"""JSON nested too deeply for a recursive parser (issue 13 item 5), at every entry point that parses
JSON: each API operation that takes a body, and admin JSON fields (webhooks: tests/webhooks/test_malformed.py).

Before: 500 nested arrays in `metadata` ended in RecursionError in the idempotency fingerprint,
~1,000 in json.loads. Now a typed 400 COMMS_JSON_TOO_DEEP, and nothing is written.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from comms import jsonlimits
from comms.errors import JsonTooDeep

pytestmark = pytest.mark.django_db

DEPTHS = [500, 100_000]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def row_counts() -> dict[str, int]:
    ours = ("comms", "templates_app", "delivery", "preferences", "tracking", "webhooks", "admin_console")
    return {m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.app_label in ours}


def body_operations(client) -> list[tuple[str, str]]:
    schema = client.get("/api/schema/?format=json").json()
    return [(method, re.sub(r"\{[^}]+\}", "1", path)) for path, item in schema["paths"].items()
            for method in item if method in ("post", "put", "patch")]


@pytest.mark.parametrize("depth", DEPTHS)
def test_send_with_deep_metadata_is_a_typed_400(api, depth):
    body = '{"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "x", "metadata": {"m": ' + \
        nested(depth) + "}}"
    before = row_counts()
    response = api.generic("POST", "/api/v1/messages", body, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY="k-deep")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "COMMS_JSON_TOO_DEEP"
    assert response.json()["details"] == {"max_depth": 100}
    assert row_counts() == before


@pytest.mark.parametrize("depth", DEPTHS)
def test_every_api_operation_with_a_body_refuses_deep_json(admin_api, client, depth):
    operations = body_operations(client)
    assert len(operations) > 20
    before = row_counts()
    for method, path in operations:
        response = admin_api.generic(method.upper(), path, nested(depth), content_type="application/json")
        assert response.status_code < 500, (method, path, response.status_code)
        body = response.json()
        assert body["code"].startswith("COMMS_"), (method, path, body)
        if response.status_code == 400:
            assert body["code"] == "COMMS_JSON_TOO_DEEP", (method, path, body)
    assert row_counts() == before


def test_nesting_up_to_the_limit_is_accepted(api):
    inner = "[" * 97 + "1" + "]" * 97  # message → metadata → "m" → 97 arrays: 100 levels in all
    body = '{"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "x", "metadata": {"m": ' + inner + "}}"
    response = api.generic("POST", "/api/v1/messages", body, content_type="application/json")
    assert response.status_code == 202, response.content[:300]


@pytest.mark.parametrize("text, too_deep", [
    ("[" * 101 + "]" * 101, True),
    ("[" * 100 + "]" * 100, False),
    ('{"a": ' * 101 + "1" + "}" * 101, True),
    ('["' + "[" * 500 + '"]', False),  # brackets inside a string are data
    ('["\\"' + "[" * 500 + '"]', False),  # ... also after an escaped quote
    ('["\\\\", ' + "[" * 101 + "]" * 101 + "]", True),  # an escaped backslash ends no string early
    ("[" * 100_000, True),  # unbalanced: still refused before json.loads recurses
])
def test_depth_check(text, too_deep):
    if too_deep:
        with pytest.raises(JsonTooDeep):
            jsonlimits.loads(text)
    else:
        jsonlimits.check_depth(text)


# --- admin JSON fields ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", DEPTHS)
def test_admin_json_field_refuses_deep_json_as_a_form_error(admin_client, tenant, depth):
    """Recipient.attributes: a models.JSONField whose admin form field Django builds (no custom form)."""
    from comms.models import Recipient

    recipient = Recipient.objects.create(tenant=tenant, external_id="u-deep", attributes={"plan": "pro"})
    url = f"/admin/comms/recipient/{recipient.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    data = {k: (v if not isinstance(v, (dict, list)) else "{}") for k, v in data.items()}
    data["attributes"] = '{"x": ' + nested(depth) + "}"
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error: not a 500, not a redirect
    assert "nests more than 100 levels" in response.content.decode()
    recipient.refresh_from_db()
    assert recipient.attributes == {"plan": "pro"}


def test_every_admin_json_field_is_bounded():
    from django.contrib import admin
    from django.db import models

    from comms.jsonlimits import BoundedJSONField

    checked = 0
    for model, model_admin in admin.site._registry.items():
        for field in model._meta.get_fields():
            if isinstance(field, models.JSONField):
                formfield = model_admin.formfield_for_dbfield(field, request=None)
                assert formfield is None or isinstance(formfield, BoundedJSONField), (model, field.name)
                checked += 1
    assert checked > 10


@pytest.mark.parametrize("depth", DEPTHS)
def test_routing_rule_dry_run_with_deep_json_is_a_typed_problem(admin_client, tenant, depth):
    from comms.router.rules import rule_save

    rule = rule_save(tenant=tenant, event_name="order.paid",
                     definition={"steps": [{"template": "receipt", "channels": ["email"]}]})
    rule = getattr(rule, "rule", rule)
    response = admin_client.post(f"/admin/router/routingrule/{rule.pk}/dry-run/", {"event": nested(depth)})
    assert response.status_code == 200
    assert "COMMS_JSON_TOO_DEEP" in response.content.decode()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_invalid_json_not_a_storage_error(api, value):
    """RFC 8259 section 6: no NaN or Infinity. Python's json accepts them and PostgreSQL then refused
    them, which answered a misleading 'cannot be stored (e.g. a NUL character)'."""
    body = '{"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "x", "metadata": {"n": ' + value + "}}"
    before = row_counts()
    response = api.generic("POST", "/api/v1/messages", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "COMMS_INVALID_JSON"
    assert "RFC 8259" in response.json()["message"]
    assert row_counts() == before
