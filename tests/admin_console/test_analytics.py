"""Analytics and compliance reports through real sends (SMTP sink), SendGrid webhooks, our own open
pixel, RFC 8058 one-click POSTs and SMS keywords; JSON, CSV and typed errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from admin_console import analytics, compliance
from comms.models import Recipient
from delivery.latency import buckets
from delivery.models import Message, MessageBatch
from delivery.services import drain_all
from preferences.models import ConsentRecord, Suppression
from preferences.services import recipient_erase, unsubscribe
from preferences.sms import sms_keyword_handle
from tests.templates_app.fixtures import variables
from tests.tracking.conftest import _no_asset_fetch, approver, approver2, editor, make_live  # noqa: F401
from tests.webhooks.signers import SendGridSigner
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
N = 20


def _send(api, template, n: int, prefix: str = "user") -> list[Message]:
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "template": template.template_key, "category": "marketing",
        "recipients": [{"to": f"{prefix}{i}@example.com", "variables": variables(1)} for i in range(n)]},
        format="json")
    assert response.status_code in (200, 201, 202), response.content
    drain_all()
    batch = MessageBatch.objects.order_by("-created_at").first()
    messages = list(Message.objects.filter(batch=batch).order_by("recipient_address"))
    assert {m.status for m in messages} == {"sent"}
    return messages


@pytest.fixture
def traffic(api, tenant, client, settings, make_live, smtp_sink):
    """20 sent; 2 hard bounces, 18 delivered, 1 complaint, 6 opened (SendGrid, one twice), 3 clicked,
    one opened twice on a desktop through our pixel (SendGrid's fixture is an iPhone), one one-click
    unsubscribe; plus STOP/START by SMS."""
    template = make_live(tenant, category="marketing")
    messages = _send(api, template, N)
    sg = SendGridSigner(settings)
    events = []
    for i, m in enumerate(messages):
        one = lambda kind: json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address, event=kind))[0]  # noqa: E731
        if i < 2:
            events.append(one("bounce"))
            continue
        events.append(one("delivered"))
        if i < 8:
            events.append(one("open"))
        if i == 2:
            events += [one("open"), one("spamreport")]
        if i < 5:
            events.append(one("click"))
    sg.sign(json.dumps(events)).send(client)
    webhooks_process_pending()
    mails = smtp_sink.by_comms_id()
    mail = mails[str(messages[10].id)][0]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    pixel = re.search(r"/o/([^\"]+)\.gif", html).group(1)
    for _ in range(2):  # opened twice on a desktop: two opens, one unique
        assert client.get(f"/o/{pixel}.gif", HTTP_USER_AGENT=DESKTOP).status_code == 200
    token = re.search(r"/u/([^>\s]+)>", mails[str(messages[11].id)][0]["List-Unsubscribe"]).group(1)
    assert Client().post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded").status_code == 200
    # One permanent failure: the relay refuses the recipient (RFC 5321 550), for errors by code.
    smtp_sink.script("gone@example.com", "550 5.1.1 no such user")
    assert api.post("/api/v1/messages", {"channel": "email", "to": "gone@example.com", "subject": "s", "body": "b"},
                    format="json").status_code == 202
    drain_all()
    assert Message.objects.get(recipient_address="gone@example.com").status == "failed"
    sms_keyword_handle(tenant=tenant, from_number="+14155550199", to_number="+15005550006", body="STOP")
    sms_keyword_handle(tenant=tenant, from_number="+14155550199", to_number="+15005550006", body="START")
    sms_keyword_handle(tenant=tenant, from_number="+14155550198", to_number="+15005550006", body="STOP")
    return template, messages


def _get(api, path: str, **params):
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def _delivery_by_channel_and_template_counts_real_events(api, traffic):
    template, _ = traffic
    body = _get(api, "/api/v1/analytics/delivery", group_by="channel,template")
    failed, row = body["rows"]  # "" (the ad-hoc message) sorts first
    assert (failed["template"], failed["failed"], failed["sent"]) == ("", 1, 0)
    assert (row["channel"], row["template"]) == ("email", template.template_key)
    assert (row["sent"], row["delivered"], row["bounced"], row["complained"]) == (N, 18, 2, 1)
    assert row["opened"] == 7 and row["clicked"] == 3  # unique: 6 SendGrid + 1 pixel, repeats once
    assert row["hard_bounce_pct"] == 10.0 and row["complaint_pct"] == 5.0
    today = timezone.now().date().isoformat()
    assert body["period"]["to"] == today and body["period"]["days"] == 30
    daily = _get(api, "/api/v1/analytics/delivery", group_by="day")["rows"]
    assert [(r["day"], r["sent"]) for r in daily] == [(today, N)]
    # A period that ends yesterday holds nothing.
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert _get(api, "/api/v1/analytics/delivery", to=yesterday)["rows"] == []


def _engagement_totals_uniques_device_hour_weekday(api, traffic):
    with CaptureQueriesContext(connection) as queries:
        body = _get(api, "/api/v1/analytics/engagement", group_by="day")
    # From the engagement aggregate only: not one statement reads the events of the period (issue 22).
    assert not [q["sql"] for q in queries
                if "tracking_messageevent" in q["sql"] or "delivery_message" in q["sql"]]
    assert any("tracking_engagementday" in q["sql"] for q in queries)
    [row] = body["rows"]
    assert row["day"] == timezone.now().date().isoformat()
    assert (row["opens"], row["unique_opens"], row["clicks"], row["unique_clicks"]) == (9, 7, 3, 3)
    devices = {r["device"]: r for r in body["by_device"]}
    assert (devices["mobile"]["opens"], devices["mobile"]["unique_opens"]) == (7, 6)
    desktop = devices["desktop"]
    assert (desktop["opens"], desktop["unique_opens"], desktop["clicks"]) == (2, 1, 0)
    assert len(body["by_hour"]) == 24 and sum(h["opens"] for h in body["by_hour"]) == 9
    assert sum(h["unique_opens"] for h in body["by_hour"]) == 7
    assert [w["weekday"] for w in body["by_weekday"]] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert sum(w["clicks"] for w in body["by_weekday"]) == 3
    providers = _get(api, "/api/v1/analytics/engagement", group_by="provider")["rows"]
    by_provider = {r["provider"]: r for r in providers}
    assert (by_provider["comms"]["opens"], by_provider["comms"]["unique_opens"]) == (2, 1)
    assert (by_provider["sendgrid"]["opens"], by_provider["sendgrid"]["unique_opens"]) == (7, 6)
    # The rows add up to what was recorded (totals exact).
    from tracking.models import MessageEvent

    assert MessageEvent.objects.filter(event_type="opened").count() == 9


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _performance_percentiles_by_priority_and_errors(api, traffic):
    with CaptureQueriesContext(connection) as queries:
        body = _get(api, "/api/v1/analytics/performance", group_by="channel")
    # From the outcome aggregate only: not one statement reads the message table (issue 22).
    assert not [q["sql"] for q in queries if "delivery_message" in q["sql"]]
    assert any("delivery_outcomeday" in q["sql"] for q in queries)
    [row] = body["rows"]
    assert (row["messages"], row["sent"], row["failed"]) == (N + 1, N, 1)
    assert row["failure_pct"] == round(100 / (N + 1), 3)
    # The histogram's percentiles bracket the true ones (nearest rank over the sent rows' due → sent).
    sent = Message.objects.filter(status__in=["sent", "delivered", "bounced", "complained"])
    waits = [(m.sent_at - max(m.created_at, m.scheduled_for or m.created_at)).total_seconds() * 1000 for m in sent]
    assert len(waits) == N and _nearest_rank(waits, 0.5) > 1.0  # real waits, not all inside bucket 0
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        true, shown = _nearest_rank(waits, q), row[f"wait_{name}_ms"]
        assert abs(shown - true) <= max(1.0, true * (buckets.RATIO - 1)) + 0.05, (name, shown, true)
    assert body["percentile_resolution"]["bucket_ratio"] == round(buckets.RATIO, 4)
    # Provider call time: every real SMTP call that decided an outcome (20 sent + 1 refused).
    [calls] = body["provider_calls"]
    assert (calls["channel"], calls["calls"]) == ("email", N + 1)
    assert 0 < calls["call_p50_ms"] <= calls["call_p90_ms"] <= calls["call_p99_ms"] < 30_000
    assert row["call_p50_ms"] == calls["call_p50_ms"]
    [error] = body["errors_by_code"]
    assert (error["channel"], error["provider"], error["code"], error["n"]) == ("email", calls["provider"], "550", 1)
    assert error["rate_pct"] == round(100 / (N + 1), 3)
    assert {"provider_response"} <= set(body)
    rows = list(csv.DictReader(io.StringIO(api.get("/api/v1/analytics/performance?format=csv").content.decode())))
    assert [(r["priority"], r["messages"]) for r in rows] == [(str(m.priority), str(N + 1)) for m in sent[:1]]


def _compliance_report_counts_every_source(api, tenant, traffic):
    body = _get(api, "/api/v1/compliance/report")
    assert body["sms_keywords"] == {"stop": 2, "start": 1}
    assert body["unsubscribes"]["one_click"] == 1
    assert body["unsubscribes"]["total"] == body["consents"]["withdrawn_total"] >= 3
    reasons = {(r["reason"], r["channel"]): r["n"] for r in body["suppressions"]}
    assert reasons[("hard_bounce", "email")] == 2 and reasons[("complaint", "email")] == 1
    assert reasons[("unsubscribe", "email")] == 1
    bc = body["bounce_complaint"]
    assert (bc["sent"], bc["hard_bounces"], bc["complaints"]) == (N, 2, 1)
    assert (bc["hard_bounce_ok"], bc["complaint_ok"]) == (False, False)  # 10 % and 5 % are far over 0.3/0.1
    assert (bc["hard_bounce_limit_pct"], bc["complaint_limit_pct"]) == (0.3, 0.1)
    assert body["erasures"] == 0


def test_erasure_is_counted(api, tenant):
    person = Recipient.objects.create(tenant=tenant, external_id="erase-me", email="erase@example.com")
    unsubscribe(recipient=person, category="marketing", source="api")
    recipient_erase(recipient=person)
    assert _get(api, "/api/v1/compliance/report")["erasures"] == 1


@pytest.mark.parametrize("all_tenants", [False, True])
def test_compliance_reads_the_ledger_and_suppressions_through_time_indexes(api, tenant, all_tenants):
    """Each read of preferences_consentrecord / preferences_suppression is an index range on its time
    column, for one tenant (the API) and for all (the console): with a ledger of older rows, the planner
    reads the period's few rows through consent_at_idx / consent_erased_idx / suppression_created_idx
    (without them: a Seq Scan, or the whole tenant through consent_subject_idx). At 10 M messages:
    bench/analytics_10m.py."""
    old = timezone.now() - timedelta(days=200)
    ConsentRecord.objects.bulk_create(ConsentRecord(tenant=tenant, subject_hash=f"s{i}", action="granted", at=old,
                                                    source="import") for i in range(3000))
    Suppression.objects.bulk_create(Suppression(tenant=tenant, channel="email", address_hash=f"a{i}", reason="manual",
                                                created_at=old) for i in range(3000))
    person = Recipient.objects.create(tenant=tenant, external_id="ix", email="ix@example.com")
    unsubscribe(recipient=person, category="marketing", source="api")
    recipient_erase(recipient=person)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE preferences_consentrecord, preferences_suppression")
    period = analytics.parse_period(None, None)
    with CaptureQueriesContext(connection) as queries:
        compliance.report(period=period, tenant_id=None if all_tenants else tenant.id)
    reads = [q["sql"] for q in queries if "preferences_" in q["sql"]]
    assert len(reads) == 3
    plans = []
    with connection.cursor() as cursor:
        for sql in reads:
            cursor.execute("EXPLAIN " + sql)
            plans.append("\n".join(r[0] for r in cursor.fetchall()))
    assert not [p for p in plans if "Seq Scan" in p], plans
    for plan, index in zip(plans, ("consent_at_idx", "consent_erased_idx", "suppression_created_idx")):
        assert f"using {index} " in plan, plan


def _csv_by_query_and_by_accept(api, traffic):
    response = api.get("/api/v1/analytics/delivery", {"group_by": "channel", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="delivery-' in response["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert (row["channel"], row["sent"], row["bounced"]) == ("email", str(N), "2")
    response = api.get("/api/v1/compliance/report", HTTP_ACCEPT="text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {"section": "sms_keywords", "key": "stop", "value": "2"} in rows
    engagement = api.get("/api/v1/analytics/engagement", {"format": "csv", "group_by": "device"})
    assert "unique_opens" in engagement.content.decode().splitlines()[0]


def _other_tenants_figures_stay_out(traffic, make_client, other_tenant):
    other = make_client(other_tenant, ["messages:read"])
    body = other.get("/api/v1/analytics/delivery").json()
    assert body["rows"] == []
    assert other.get("/api/v1/compliance/report").json()["sms_keywords"] == {"stop": 0, "start": 0}


def test_reports_through_real_sends_and_webhooks(api, tenant, traffic, make_client, other_tenant):
    """One traffic set (sends + webhooks take seconds) checked by every report, CSV and tenancy."""
    _delivery_by_channel_and_template_counts_real_events(api, traffic)
    _engagement_totals_uniques_device_hour_weekday(api, traffic)
    _performance_percentiles_by_priority_and_errors(api, traffic)
    _compliance_report_counts_every_source(api, tenant, traffic)
    _csv_by_query_and_by_accept(api, traffic)
    _other_tenants_figures_stay_out(traffic, make_client, other_tenant)


@pytest.mark.parametrize("params, code", [
    ({"from": "2026-02-01", "to": "2026-01-01"}, "COMMS_ANALYTICS_PERIOD_INVALID"),
    ({"from": "yesterday"}, "COMMS_ANALYTICS_PERIOD_INVALID"),
    ({"to": "2026-13-01"}, "COMMS_ANALYTICS_PERIOD_INVALID"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "COMMS_ANALYTICS_PERIOD_TOO_LONG"),
    ({"group_by": "colour"}, "COMMS_ANALYTICS_UNKNOWN_DIMENSION"),
    ({"group_by": "channel,channel"}, "COMMS_ANALYTICS_UNKNOWN_DIMENSION"),
    ({"group_by": ","}, "COMMS_ANALYTICS_UNKNOWN_DIMENSION"),
    ({"format": "xml"}, "COMMS_ANALYTICS_UNKNOWN_FORMAT"),
])
@pytest.mark.parametrize("path", ["delivery", "engagement", "performance"])
def test_bad_input_is_a_typed_400(api, params, code, path):
    response = api.get(f"/api/v1/analytics/{path}", params)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code and response.json()["message"]


def test_compliance_bad_period_and_dimension_of_another_report(api):
    assert api.get("/api/v1/compliance/report", {"from": "2026-03-01", "to": "2025-01-01"}).json()["code"] == \
        "COMMS_ANALYTICS_PERIOD_INVALID"
    # engagement knows `device`, delivery does not
    assert api.get("/api/v1/analytics/delivery", {"group_by": "device"}).json()["code"] == \
        "COMMS_ANALYTICS_UNKNOWN_DIMENSION"
    assert api.get("/api/v1/analytics/engagement", {"group_by": "device"}).status_code == 200


def test_400_days_is_the_cap(api):
    end = timezone.now().date()
    ok = api.get("/api/v1/analytics/delivery", {"from": (end - timedelta(days=399)).isoformat()})
    assert ok.status_code == 200 and ok.json()["period"]["days"] == 400
    assert api.get("/api/v1/analytics/delivery", {"from": (end - timedelta(days=400)).isoformat()}).json()[
        "code"] == "COMMS_ANALYTICS_PERIOD_TOO_LONG"
