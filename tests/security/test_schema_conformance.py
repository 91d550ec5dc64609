"""Regression for schemathesis' S1 findings: the OpenAPI schema documents the statuses the API really
answers, and a body the schema forbids is refused (not coerced: DRF would store 0 as "0")."""

from __future__ import annotations

import jsonschema
import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def responses(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]["responses"]


def assert_documented(schema: dict, method: str, path: str, response) -> None:
    """The status is documented for the operation, and an error body matches the Error schema."""
    documented = responses(schema, method, path)
    assert str(response.status_code) in documented, (method, path, response.status_code, sorted(documented))
    if response.status_code >= 400:
        jsonschema.validate(response.json(), schema["components"]["schemas"]["Error"])


def test_success_statuses_match_what_the_views_answer(schema):
    assert set(c for c in responses(schema, "post", "/api/v1/suppressions") if c < "300") == {"201"}
    assert {"200", "202"} <= set(responses(schema, "post", "/api/v1/recipients/{external_id}/subscriptions"))
    # These DELETEs answer 200 with the cancelled/disabled object, not an empty 204.
    for path in ("/api/v1/schedules/{schedule_id}", "/api/v1/webhook-endpoints/{endpoint_id}"):
        assert set(c for c in responses(schema, "delete", path) if c < "300") == {"200"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code in ("400", "401", "404", "429", "503"):
                body = operation["responses"][code]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"} or (path, code) == ("/api/v1/health", "503")


def test_suppression_post_answers_the_documented_201(schema, admin_api):
    body = {"address": "gone@example.com", "channel": "email", "reason": "legal", "detail": "court order"}
    response = admin_api.post("/api/v1/suppressions", body, format="json")
    assert response.status_code == 201, response.content
    assert_documented(schema, "post", "/api/v1/suppressions", response)


@pytest.mark.parametrize("path, body, field", [
    # schemathesis ST201, verbatim: a recipient id that is a number, not a string.
    ("/api/v1/events", {"actor": {}, "audience": {}, "category": "transactional", "cause_ref": "", "name": "0",
                        "payload": {}, "priority": 2, "recipients": [0]}, "recipients"),
    # schemathesis ST201, verbatim: a suppression detail that is a number.
    ("/api/v1/suppressions", {"address": "0", "channel": "sms", "detail": 0, "expires_at": "2000-01-01T00:00:00Z",
                              "reason": "legal", "source": "api"}, "detail"),
    ("/api/v1/events", {"name": "signup", "priority": {"x": 1}}, "priority"),
    ("/api/v1/events", {"name": "signup", "priority": True}, "priority"),
    ("/api/v1/events", {"name": "signup", "priority": " P1"}, "priority"),
    ("/api/v1/events", {"name": 5}, "name"),
    ("/api/v1/messages", {"channel": "email", "to": "a@example.com", "body": "x", "priority": 9}, "priority"),
])
def test_a_body_the_schema_forbids_is_refused_with_a_typed_400(schema, admin_api, path, body, field):
    response = admin_api.post(path, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "COMMS_VALIDATION_ERROR" and error["message"].startswith(field)
    assert_documented(schema, "post", path, response)
    # ... and the schema forbids it too (the refusal is where the schema says, not a stricter rule).
    request_schema = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, {**request_schema, "components": schema["components"]})


def test_priority_names_the_schema_lists_are_accepted(admin_api):
    for priority in (0, 4, "P1", "p3", "2", "high", "low"):
        response = admin_api.post("/api/v1/events", {"name": "nothing.routes.this", "priority": priority},
                                  format="json")
        assert response.status_code == 202, (priority, response.content)
