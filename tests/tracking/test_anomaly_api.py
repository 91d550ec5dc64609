"""GET /api/v1/anomalies (filters, pagination, evidence, tenant isolation), POST …/acknowledge (who/when,
audited, typed errors) and GET /api/v1/recipients/{id}/engagement; every answer checked against the
OpenAPI schema drf-spectacular publishes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from comms.models import AuditEntry, Recipient, Scope
from tracking.models import AnomalyAlert, RecipientEngagement
from tracking.services.anomaly import Point, anomaly_observe

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def _json_schema(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type list (jsonschema does not know `nullable`)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if node.get("nullable") and "type" not in node:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def conforms(schema: dict, method: str, path: str, response) -> None:
    """The status is documented and the body matches its schema (Error for 4xx)."""
    documented = schema["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (path, response.status_code, sorted(documented))
    body_schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), _json_schema({**body_schema, "components": schema["components"]}))


def _incident(key: str, kind: str, *, hours: int = 60, at: int = 50, tenant_id=None) -> AnomalyAlert:
    """Replay a failure-rate incident through the real service: one alert with its evidence."""
    rng = random.Random(hash(key) % 1000)
    for t in range(hours):
        p = 0.3 if at <= t < at + 3 else 0.01
        failed = sum(1 for _ in range(400) if rng.random() < p)
        anomaly_observe(hour=START + timedelta(hours=t), points=[Point(
            key, kind, failed / 400, 400.0, labels={"provider": key.split(":")[-1]}, tenant_id=tenant_id)])
    return AnomalyAlert.objects.get(series=key)


def test_the_list_filters_pages_and_carries_the_evidence(api, schema):
    resolved = _incident("failure_rate:twilio", "failure_rate")  # back to normal at hour 53
    still = _incident("failure_rate:ses", "failure_rate", hours=52)  # still out at the last hour
    assert resolved.resolved_at is not None and still.resolved_at is None

    everything = api.get("/api/v1/anomalies")
    assert everything.status_code == 200
    conforms(schema, "get", "/api/v1/anomalies", everything)
    rows = everything.json()["results"]
    assert {r["series"] for r in rows} == {"failure_rate:twilio", "failure_rate:ses"}
    first = next(r for r in rows if r["series"] == "failure_rate:ses")
    assert first["status"] == "open" and first["labels"] == {"provider": "ses"}
    assert first["observed"] > 0.2 and first["baseline"] < 0.05 and first["evidence"]["points"]

    assert [r["series"] for r in api.get("/api/v1/anomalies?status=open").json()["results"]] == ["failure_rate:ses"]
    assert [r["series"] for r in api.get("/api/v1/anomalies?status=resolved").json()["results"]] == \
        ["failure_rate:twilio"]
    assert api.get("/api/v1/anomalies?kind=queue_age").json()["results"] == []
    assert [r["id"] for r in api.get("/api/v1/anomalies?series=failure_rate:tw*").json()["results"]] == [resolved.id]
    day = resolved.hour.date().isoformat()
    assert len(api.get(f"/api/v1/anomalies?from={day}&to={day}").json()["results"]) == 2
    assert api.get("/api/v1/anomalies?from=2026-02-01").json()["results"] == []

    page = api.get("/api/v1/anomalies?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    second = api.get(page["next"]).json()
    assert len(second["results"]) == 1 and second["results"][0]["id"] != page["results"][0]["id"]

    detail = api.get(f"/api/v1/anomalies/{resolved.id}")
    assert detail.status_code == 200 and detail.json()["series"] == "failure_rate:twilio"
    conforms(schema, "get", "/api/v1/anomalies/{alert_id}", detail)


@pytest.mark.parametrize("query, field", [
    ("status=closed", "status"), ("kind=weather", "kind"), ("from=yesterday", "from"),
    ("from=2026-03-01&to=2026-02-01", None), ("from=2020-01-01&to=2026-01-01", None), ("limit=0", "limit"),
    ("limit=201", "limit"), ("series=" + "x" * 201, "series"),
])
def test_bad_filters_are_typed_400s(api, schema, query, field):
    response = api.get(f"/api/v1/anomalies?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "COMMS_ANOMALY_FILTER_INVALID"
    if field:
        assert response.json()["details"]["field"] == field
    conforms(schema, "get", "/api/v1/anomalies", response)


def test_odd_but_valid_input_answers_200_or_a_typed_404(api):
    assert api.get("/api/v1/anomalies?to=9999-12-31").status_code == 200
    assert api.get("/api/v1/anomalies?from=2026-01-05T10:00:00%2B02:00").status_code == 200
    bad_cursor = api.get("/api/v1/anomalies?cursor=garbage")
    assert bad_cursor.status_code == 404 and bad_cursor.json()["code"] == "COMMS_NOT_FOUND"
    for alert_id in ("abc", "99999999", "1" * 40):
        response = api.get(f"/api/v1/anomalies/{alert_id}")
        assert response.status_code == 404 and response.json()["code"] == "COMMS_ANOMALY_NOT_FOUND"


def test_a_key_sees_system_alerts_and_its_own_tenants_never_anothers(api, other_tenant, tenant):
    _incident(f"failure_rate:x-{other_tenant.id}", "failure_rate", tenant_id=str(other_tenant.id))
    mine = _incident(f"failure_rate:x-{tenant.id}", "failure_rate", tenant_id=str(tenant.id))
    system = _incident("failure_rate:twilio", "failure_rate")
    assert {r["id"] for r in api.get("/api/v1/anomalies").json()["results"]} == {mine.id, system.id}
    theirs = AnomalyAlert.objects.get(tenant_id=other_tenant.id)
    assert api.get(f"/api/v1/anomalies/{theirs.id}").status_code == 404


def test_acknowledge_records_who_and_when_audited_once(api, admin_api, make_client, tenant, other_tenant, schema):
    alert = _incident("failure_rate:twilio", "failure_rate")
    url = f"/api/v1/anomalies/{alert.id}/acknowledge"
    refused = api.post(url, {}, format="json")  # messages:read/send is not enough
    assert refused.status_code == 403 and refused.json()["code"] == "COMMS_FORBIDDEN"

    done = admin_api.post(url, {"note": "twilio status page says degraded"}, format="json")
    assert done.status_code == 200, done.content
    conforms(schema, "post", "/api/v1/anomalies/{alert_id}/acknowledge", done)
    body = done.json()
    assert body["acknowledged_by"].startswith("api-key:") and body["acknowledged_at"]
    alert.refresh_from_db()
    assert alert.acknowledged_by == body["acknowledged_by"] and alert.resolved_at is not None  # nothing else moved
    entry = AuditEntry.objects.get(action="anomaly.acknowledge")
    assert (entry.target_id, entry.actor_label, entry.reason) == (str(alert.id), body["acknowledged_by"],
                                                                   "twilio status page says degraded")
    assert entry.tenant_id == tenant.id

    again = admin_api.post(url, {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "COMMS_ANOMALY_ALREADY_ACKNOWLEDGED"
    assert again.json()["details"]["acknowledged_by"] == body["acknowledged_by"]
    conforms(schema, "post", "/api/v1/anomalies/{alert_id}/acknowledge", again)
    assert admin_api.get("/api/v1/anomalies?status=acknowledged").json()["results"][0]["id"] == alert.id
    assert admin_api.get("/api/v1/anomalies?status=unacknowledged").json()["results"] == []

    missing = admin_api.post("/api/v1/anomalies/424242/acknowledge", {}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "COMMS_ANOMALY_NOT_FOUND"
    long_note = admin_api.post(url, {"note": "x" * 501}, format="json")
    assert long_note.status_code == 400 and long_note.json()["code"] == "COMMS_VALIDATION_ERROR"
    theirs = _incident("failure_rate:theirs", "failure_rate", tenant_id=str(other_tenant.id))
    # another tenant's alert does not exist for this tenant's admin key; that tenant's own key may acknowledge it
    assert admin_api.post(f"/api/v1/anomalies/{theirs.id}/acknowledge", {}, format="json").status_code == 404
    their_admin = make_client(other_tenant, [Scope.ADMIN])
    assert their_admin.post(f"/api/v1/anomalies/{theirs.id}/acknowledge", {}, format="json").status_code == 200


def test_a_recipients_engagement_scores_and_best_channel(api, admin_api, schema, tenant, other_tenant):
    scored = Recipient.objects.create(tenant=tenant, external_id="u-1", email="u1@example.com")
    Recipient.objects.create(tenant=tenant, external_id="u-2", email="u2@example.com")
    RecipientEngagement.objects.create(
        tenant_id=tenant.id, recipient_id=scored.id, score=0.72, reengagement=0.05, best_channel="push",
        channels={"push": {"sent": 10, "engaged": 6, "rate": 0.55}, "email": {"sent": 12, "engaged": 1, "rate": 0.1}})
    response = api.get("/api/v1/recipients/u-1/engagement")
    assert response.status_code == 200
    conforms(schema, "get", "/api/v1/recipients/{external_id}/engagement", response)
    body = response.json()
    assert (body["engagement_score"], body["reengagement_score"], body["best_channel"]) == (0.72, 0.05, "push")
    assert body["channels"]["email"]["sent"] == 12 and body["computed_at"]
    never = api.get("/api/v1/recipients/u-2/engagement").json()  # never scored: zeros, no channel
    assert (never["engagement_score"], never["best_channel"], never["computed_at"]) == (0.0, "", None)
    Recipient.objects.create(tenant=other_tenant, external_id="u-3", email="u3@example.com")
    for missing in ("u-3", "nobody", "x" * 300):
        response = api.get(f"/api/v1/recipients/{missing}/engagement")
        assert response.status_code == 404 and response.json()["code"] == "COMMS_NOT_FOUND"
