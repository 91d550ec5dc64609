"""Locale coverage, variable flags, the locale/version diff (API) and the CI locale check (issue 20)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from comms.models import Tenant, validate_required_locales
from templates_app import services
from templates_app.locale_diff import side_by_side
from tests.templates_app.fixtures import ORDER_MJML, order_template_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(tenant, make_live):
    """order_confirmation v1 live with en-US (default) and de; de's SMS drops the tracking link."""
    return make_live(tenant)


def test_coverage_lists_locales_per_channel_and_flags_dropped_variables(admin_api, live):
    body = admin_api.get("/api/v1/templates/order_confirmation/locales").json()
    assert body["version"] == 1 and body["active"] is True and body["reference_locale"] == "en-US"
    assert body["channels"] == ["email", "sms", "push", "in_app"]
    by_locale = {row["locale"]: row for row in body["locales"]}
    assert [row["locale"] for row in body["locales"]] == ["en-US", "de"]  # the reference first
    en, de = by_locale["en-US"], by_locale["de"]
    assert en["flagged"] is False and en["channels"]["sms"]["variables"] == [
        "order.currency", "order.id", "order.total", "order.url"]
    assert de["flagged"] is True
    assert de["channels"]["sms"]["missing"] == ["order.url"] and de["channels"]["sms"]["extra"] == []
    # A channel's variables are those of all its parts: the German body still greets by name.
    assert de["channels"]["email"]["missing"] == [] and "user.first_name" in de["channels"]["email"]["variables"]
    # The in-app card has no link and no name.
    assert de["channels"]["in_app"]["missing"] == ["order.url", "user.first_name"]
    assert de["channels"]["push"] == {"present": True, "variables": ["order.currency", "order.id", "order.total"],
                                      "missing": [], "extra": [], "flagged": False}
    assert body["required"] == {"email": [], "sms": [], "push": [], "in_app": []}
    assert body["missing_required"] == []


def test_a_locale_that_adds_a_variable_or_lacks_a_channel_is_shown(admin_api, tenant, live, editor):
    services.template_edit(template=live, actor=editor, data={"locales": [
        {"locale": "fr", "subject": "Commande {{order.id}} {{coupon}}", "body_html": ORDER_MJML}]})
    tenant.required_locales = {"*": ["en-US"], "sms": ["fr-CA"]}
    tenant.save()
    draft = admin_api.get("/api/v1/templates/order_confirmation/locales?version=v2").json()
    assert draft["version"] == 2 and draft["active"] is False
    fr = next(row for row in draft["locales"] if row["locale"] == "fr")
    assert fr["channels"]["email"]["extra"] == ["coupon"] and fr["flagged"] is True
    assert fr["channels"]["sms"] == {"present": False, "variables": [], "missing": [], "extra": [],
                                     "flagged": False}
    assert draft["required"]["sms"] == ["en-US", "fr-CA"]
    # fr-CA is served by "fr" (its language), but fr has no SMS text: still missing.
    assert draft["missing_required"] == [{"channel": "sms", "locale": "fr-CA"}]
    # The live version is the default and does not have fr at all.
    live_body = admin_api.get("/api/v1/templates/order_confirmation/locales").json()
    assert live_body["version"] == 1 and {"channel": "sms", "locale": "fr-CA"} in live_body["missing_required"]


def test_diff_of_two_locales_is_side_by_side(admin_api, live):
    response = admin_api.get("/api/v1/templates/order_confirmation/diff?a=en-US&b=de")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mode"] == "locale" and body["a"] == {"version": 1, "locale": "en-US"}
    parts = {p["part"]: p for p in body["parts"]}
    assert parts["subject"]["changed"] is True
    assert parts["subject"]["rows"] == [{"op": "replace", "a_line": 1, "a": "Order {{order.id}} confirmed, "
                                         "{{user.first_name}}", "b_line": 1, "b": "Bestellung {{order.id}} bestätigt"}]
    html_rows = parts["body_html"]["rows"]
    assert {r["op"] for r in html_rows} == {"equal", "replace"}
    changed = [r for r in html_rows if r["op"] == "replace"]
    assert len(changed) == 1 and "Hallo" in changed[0]["b"] and "Hello" in changed[0]["a"]
    assert "voice_text" not in parts  # empty on both sides
    assert body["variables"]["sms"] == {"only_a": ["order.url"], "only_b": [],
                                        "both": ["order.currency", "order.id", "order.total"]}
    # Locale tags are matched case-insensitively, as people type them.
    assert admin_api.get("/api/v1/templates/order_confirmation/diff?a=EN-us&b=de").status_code == 200


def test_diff_of_two_versions_all_locales_or_one(admin_api, live, editor):
    services.template_edit(template=live, actor=editor, data={"change_notes": "shorter SMS", "locales": [
        {"locale": "de", "sms_text": "Bestellung {{order.id}}\nVerfolgen: {{order.url}}"}]})
    body = admin_api.get("/api/v1/templates/order_confirmation/diff?a=v1&b=2").json()
    assert body["mode"] == "version" and (body["a"]["version"], body["b"]["version"]) == (1, 2)
    changed = [(p.get("locale"), p["part"]) for p in body["parts"] if p["changed"]]
    assert ("de", "sms_text") in changed and (None, "change_notes") in changed
    assert ("en-US", "subject") not in changed
    sms = next(p for p in body["parts"] if p.get("locale") == "de" and p["part"] == "sms_text")
    assert [r["op"] for r in sms["rows"]] == ["replace", "insert"]
    assert sms["rows"][1] == {"op": "insert", "a_line": None, "a": None, "b_line": 2,
                              "b": "Verfolgen: {{order.url}}"}
    assert body["variables"]["de"]["sms"]["only_b"] == ["order.url"]
    only_de = admin_api.get("/api/v1/templates/order_confirmation/diff?a=v1&b=v2&locale=de").json()
    assert {p.get("locale") for p in only_de["parts"]} == {None, "de"}


@pytest.mark.parametrize("query,status,code", [
    ("a=v1&b=v9", 404, "COMMS_TEMPLATE_VERSION_UNKNOWN"),
    ("a=en-US&b=fr", 404, "COMMS_TEMPLATE_LOCALE_UNKNOWN"),
    ("a=en-US&b=de&version=v7", 404, "COMMS_TEMPLATE_VERSION_UNKNOWN"),
    ("a=v1&b=v1&locale=ja", 404, "COMMS_TEMPLATE_LOCALE_UNKNOWN"),
    ("a=v1&b=de", 400, "COMMS_DIFF_INVALID"),
    ("a=en-US", 400, "COMMS_DIFF_INVALID"),
    ("a=%3Cscript%3E&b=de", 400, "COMMS_DIFF_INVALID"),
    ("a=v99999999999999999999&b=v1", 400, "COMMS_DIFF_INVALID"),
])
def test_diff_refuses_unknown_sides_with_typed_errors(admin_api, live, query, status, code):
    response = admin_api.get(f"/api/v1/templates/order_confirmation/diff?{query}")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and response.json()["message"]


def test_unknown_version_and_template_for_coverage(admin_api, live):
    bad = admin_api.get("/api/v1/templates/order_confirmation/locales?version=v3")
    assert bad.status_code == 404 and bad.json()["code"] == "COMMS_TEMPLATE_VERSION_UNKNOWN"
    assert bad.json()["details"]["versions"] == [1]
    junk = admin_api.get("/api/v1/templates/order_confirmation/locales?version=latest")
    assert junk.status_code == 404 and junk.json()["code"] == "COMMS_TEMPLATE_VERSION_UNKNOWN"
    assert admin_api.get("/api/v1/templates/nope/locales").json()["code"] == "COMMS_NOT_FOUND"


def test_another_tenants_template_is_not_visible(live, other_tenant, make_client):
    from comms.models import Scope

    client = make_client(other_tenant, [Scope.MESSAGES_READ])
    response = client.get("/api/v1/templates/order_confirmation/diff?a=en-US&b=de")
    assert response.status_code == 404 and response.json()["code"] == "COMMS_NOT_FOUND"


def test_side_by_side_pads_an_uneven_replacement():
    rows = side_by_side(["a", "b", "c"], ["a", "B1", "B2", "c"])
    assert [r["op"] for r in rows] == ["equal", "replace", "insert", "equal"]
    assert rows[2] == {"op": "insert", "a_line": None, "a": None, "b_line": 3, "b": "B2"}
    assert rows[3]["a_line"] == 3 and rows[3]["b_line"] == 4


# --- required locales and the CI command --------------------------------------------------------------

def test_required_locales_setting_is_validated():
    validate_required_locales({"*": ["en-US", "de"], "sms": ["pt_BR"]})
    validate_required_locales(["en-US"])
    for bad in ({"fax": ["en"]}, {"*": "en"}, {"*": ["en US"]}, {"*": [3]}, "en"):
        with pytest.raises(ValidationError):
            validate_required_locales(bad)


def _check(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check_template_locales", *args, stdout=out, stderr=err)
        return 0, out.getvalue(), err.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)


def test_check_command_fails_listing_each_gap_then_passes(tenant, other_tenant, live, make_live, editor, approver):
    tenant.required_locales = {"*": ["en-US", "de-AT"], "sms": ["es"]}
    tenant.save()
    code, out, err = _check("--tenant", tenant.slug)
    assert code == 1
    assert out.splitlines() == [f"{tenant.slug}/order_confirmation v1: sms lacks required locale es"]
    assert "1 required locale(s) missing in 1 active template(s)" in err  # de-AT is served by de

    # A draft with Spanish does not count until it is live; once live the check passes.
    spanish = {**order_template_data()["locales"][0], "locale": "es", "sms_text": "Pedido {{order.id}}: {{order.url}}"}
    services.template_edit(template=live, actor=editor, data={"locales": [spanish]})
    assert _check("--tenant", tenant.slug)[0] == 1
    draft = live.versions.get(version=2)
    services.version_submit(version=draft, actor=editor, user=editor)
    services.version_approve(version=draft, user=approver)
    code, out, _ = _check("--tenant", tenant.slug)
    assert code == 0 and "Every active template has its tenant's required locales." in out

    # Another tenant's requirement is checked on its own templates only; all tenants by default.
    other_tenant.required_locales = ["fr"]
    other_tenant.save()
    make_live(other_tenant)
    assert _check("--tenant", tenant.slug)[0] == 0
    code, out, _ = _check("--json")
    assert code == 1
    gaps = json.loads(out)
    assert {(g["tenant"], g["channel"], g["locale"]) for g in gaps} == {
        ("other", c, "fr") for c in ("email", "sms", "push", "in_app")}


def test_check_command_unknown_tenant_is_a_usage_error(live):
    code, _, err = _check("--tenant", "nobody")
    assert code == 2 and "No tenant with slug 'nobody'" in err


@pytest.mark.django_db(transaction=True)
def test_check_command_runs_as_a_process_with_its_exit_code(tenant, live):
    """What CI runs: the real manage.py, its exit status and output."""
    import subprocess
    import sys

    from tests.conftest import worker_env

    tenant.required_locales = {"push": ["ja"]}
    tenant.save()
    run = [sys.executable, "manage.py", "check_template_locales", "--tenant", tenant.slug]
    result = subprocess.run(run, env=worker_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == f"{tenant.slug}/order_confirmation v1: push lacks required locale ja"
    tenant.required_locales = {"push": ["de"]}
    tenant.save()
    result = subprocess.run(run, env=worker_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
