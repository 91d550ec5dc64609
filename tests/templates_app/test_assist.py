"""Content assistants (issue 22 item 7): SMS compression, variable warnings, and the language-model
suggestions through the chat-completions stand-in (real HTTP on loopback, nothing patched)."""

from __future__ import annotations

import copy

import pytest

from comms.audit import AuditEntry
from comms.devserver.embedded import free_port
from comms.devserver.standins.llm import LlmStandIn
from templates_app import services
from templates_app.assist.sms import sms_compress
from templates_app.models import Template, TemplateVersion
from templates_app.sms_encoding import sms_segments
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db


# --- SMS compression ------------------------------------------------------------------------------------

def test_non_gsm_characters_become_gsm_and_fit_one_segment_with_placeholders_intact():
    text = ("Hi {{user.first_name}} — your order “{{order.id}}” is ready… 🎉 Pick it up at {{store}}\u00a0today. "
            "Questions? Call {{ phone }}.")
    assert sms_segments(text).encoding == "UCS-2" and sms_segments(text).segments == 2
    result = sms_compress(text).as_dict()
    assert result["changed"] and result["fits"]
    assert result["before"] == {"encoding": "UCS-2", "units": 123, "segments": 2}
    assert result["after"]["encoding"] == "GSM-7" and result["after"]["segments"] == 1
    assert result["suggestion"] == ('Hi {{user.first_name}} - your order "{{order.id}}" is ready... Pick it up at '
                                    '{{store}} today. Questions? Call {{ phone }}.')
    for placeholder in ("{{user.first_name}}", "{{order.id}}", "{{store}}", "{{ phone }}"):
        assert placeholder in result["suggestion"]


def test_placeholders_with_non_gsm_literals_inside_are_not_touched():
    text = '{{formatDate order.date "D MMM — YYYY"}} ✅ {{{raw_link}}} “ok”'
    result = sms_compress(text).as_dict()
    assert '{{formatDate order.date "D MMM — YYYY"}}' in result["suggestion"]  # helper argument kept verbatim
    assert "{{{raw_link}}}" in result["suggestion"]
    assert result["suggestion"].endswith('"ok"')


def test_short_gsm_text_is_unchanged():
    result = sms_compress("Your code is {{code}}. Reply STOP to opt out.").as_dict()
    assert not result["changed"] and result["changes"] == []
    assert result["suggestion"] == result["original"]


def test_wording_rules_run_only_until_it_fits_and_keep_stop():
    text = ("Please note that your appointment at {{clinic}} is confirmed for {{date}}. In order to reschedule, "
            "please call us as soon as possible at {{phone}}. Reply STOP to opt out.")
    assert sms_segments(text).segments == 2
    result = sms_compress(text).as_dict()
    assert result["fits"] and result["after"]["segments"] == 1
    assert result["suggestion"].startswith("Your appointment at {{clinic}}")  # filler gone, sentence re-capitalised
    assert "Reply STOP to opt out." in result["suggestion"]
    assert "'and' -> '&'" not in result["changes"]  # it stopped as soon as the text fitted


def test_two_segment_target_and_letters_of_other_scripts_are_kept():
    text = "Ваш код {{code}} — не сообщайте его никому 🙂 " * 2
    result = sms_compress(text, max_segments=2).as_dict()
    assert "Ваш код {{code}} - не сообщайте его никому" in result["suggestion"]
    assert result["after"]["encoding"] == "UCS-2" and "🙂" not in result["suggestion"]
    assert result["fits"]


def test_sms_compress_api_for_text_and_for_version(admin_api):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/sms-compress",
                            {"text": "Done — thanks!"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["suggestions"][0]["suggestion"] == "Done - thanks!"
    per_locale = admin_api.post("/api/v1/templates/order_confirmation/assist/sms-compress", {}, format="json").json()
    assert [s["locale"] for s in per_locale["suggestions"]] == ["de", "en-US"]
    assert not any(s["changed"] for s in per_locale["suggestions"])  # short GSM-7 texts: nothing to suggest
    bad = admin_api.post("/api/v1/templates/order_confirmation/assist/sms-compress", {"max_segments": 0}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_VALIDATION_ERROR"


def test_assist_endpoints_need_the_admin_scope(api, admin_api):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    refused = api.post("/api/v1/templates/order_confirmation/assist/variables", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "COMMS_FORBIDDEN"


# --- variable warnings ----------------------------------------------------------------------------------

def test_variable_warnings_name_undeclared_unused_and_sample_mismatches(admin_api):
    data = copy.deepcopy(order_template_data())  # the fixture's SCHEMA is shared: never mutate it
    data["variables_schema"]["properties"]["coupon"] = {"type": "string"}  # declared, never used
    data["sample_variables"]["order"]["total"] = "a lot"  # schema says number
    data["locales"][0]["sms_text"] += " Code {{promo_code}} {{order.totl}}"  # used, not declared (a root, a typo)
    admin_api.post("/api/v1/templates", data, format="json")
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/variables", {}, format="json")
    assert answer.status_code == 200
    warnings = {(w["code"], w["variable"]): w for w in answer.json()["warnings"]}
    assert warnings[("VAR_UNDECLARED", "promo_code")]["locations"] == [
        {"channel": "sms", "locale": "en-US", "field": "sms_text"}]
    assert warnings[("VAR_UNDECLARED", "order.totl")]["locations"][0]["field"] == "sms_text"
    assert ("VAR_UNUSED", "coupon") in warnings
    assert warnings[("SAMPLE_MISMATCH", "order.total")]["rule"] == "type"
    assert not any(code == "VAR_UNDECLARED" and name in ("order", "user", "items") for code, name in warnings)


def test_clean_template_has_no_variable_warnings(admin_api):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/variables", {"version": 1}, format="json")
    assert answer.json()["warnings"] == []
    missing = admin_api.post("/api/v1/templates/order_confirmation/assist/variables", {"version": 9}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "COMMS_NOT_FOUND"


# --- language model -------------------------------------------------------------------------------------

@pytest.fixture
def llm(settings):
    stand_in = LlmStandIn(api_key="sk-test-secret", port=free_port())
    settings.COMMS_LLM_BASE_URL = stand_in.url
    settings.COMMS_LLM_MODEL = "standin-1"
    settings.COMMS_LLM_API_KEY = "sk-test-secret"
    settings.COMMS_LLM_TIMEOUT = 2.0
    yield stand_in
    stand_in.close()


def test_subjects_through_the_stand_in(admin_api, llm, caplog):
    caplog.set_level("DEBUG")
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {"count": 3}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["suggestions"][1] == "Update: Order {{order.id}} confirmed, {{user.first_name}}"
    assert body["draft"] is True and body["model"] == "standin-1"
    assert llm.requests[0]["model"] == "standin-1"
    template = Template.objects.get(template_key="order_confirmation")
    assert template.versions.get().locales.get(locale="en-US").subject == "Order {{order.id}} confirmed, {{user.first_name}}"
    entry = AuditEntry.objects.get(action="template.assist.subjects")
    assert "sk-test-secret" not in str(entry.diff)
    assert "llm call model=standin-1 status=200" in caplog.text and "sk-test-secret" not in caplog.text


def test_translation_creates_a_draft_only(admin_api, llm, make_live, tenant):
    template = make_live(tenant)
    live = template.active_version
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/translate",
                            {"locales": ["fr", "de"]}, format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["created"] == ["fr"] and answer.json()["skipped"] == ["de"]
    template.refresh_from_db()
    assert template.active_version_id == live.pk  # the live version is untouched
    assert not live.locales.filter(locale="fr").exists()
    draft = template.versions.get(version=answer.json()["version"])
    assert draft.status == TemplateVersion.Status.DRAFT and draft.pk != live.pk
    french = draft.locales.get(locale="fr")
    assert french.subject == "[fr] Order {{order.id}} confirmed, {{user.first_name}}"
    assert "{{order.url}}" in french.sms_text and "[fr] Hello {{user.first_name}}," in french.body_html
    preview = services.template_preview(version=draft, variables=None, locale="fr")
    assert "[fr]" in preview["channels"]["email"]["subject"]


def test_translation_that_breaks_placeholders_is_refused_and_writes_nothing(admin_api, llm):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    llm.mode = "placeholders"
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/translate", {"locales": ["fr"]}, format="json")
    assert answer.status_code == 502 and answer.json()["code"] == "COMMS_ASSISTANT_FAILED"
    assert answer.json()["details"]["reason"] == "placeholders"
    assert not Template.objects.get().versions.get().locales.filter(locale="fr").exists()


@pytest.mark.parametrize("mode, reason", [("garbage", "not_json"), ("malformed", "format"), ("error", "http_status")])
def test_garbage_from_the_model_is_a_typed_error(admin_api, llm, mode, reason):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    llm.mode = mode
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {}, format="json")
    assert answer.status_code == 502
    assert answer.json()["code"] == "COMMS_ASSISTANT_FAILED" and answer.json()["details"]["reason"] == reason
    assert "sk-test-secret" not in answer.content.decode()
    # nothing else fails: the rule-based assistants still answer
    assert admin_api.post("/api/v1/templates/order_confirmation/assist/variables", {}, format="json").status_code == 200


def test_timeout_is_a_typed_error(admin_api, llm, settings):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    settings.COMMS_LLM_TIMEOUT = 0.3
    llm.delay = 1.0
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {}, format="json")
    assert answer.status_code == 502 and answer.json()["details"]["reason"] == "timeout"


def test_wrong_key_is_a_typed_error(admin_api, llm, settings):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    settings.COMMS_LLM_API_KEY = "sk-wrong"
    answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {}, format="json")
    assert answer.status_code == 502 and answer.json()["details"] == {"reason": "http_status", "status": 401}
    assert "sk-wrong" not in answer.content.decode()


def test_not_configured_says_the_assistant_is_off(admin_api, settings):
    settings.COMMS_LLM_BASE_URL = ""
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    for path in ("subjects", "translate"):
        answer = admin_api.post(f"/api/v1/templates/order_confirmation/assist/{path}", {"locales": ["fr"]},
                                format="json")
        assert answer.status_code == 503 and answer.json()["code"] == "COMMS_ASSISTANT_OFF"
    assert admin_api.get("/api/v1/templates/assist/status").json()["enabled"] is False


def test_link_local_and_private_endpoints_are_refused(admin_api, settings):
    admin_api.post("/api/v1/templates", order_template_data(), format="json")
    settings.COMMS_LLM_MODEL = "m"
    settings.COMMS_LLM_TIMEOUT = 0.5
    for url in ("http://169.254.169.254", "http://10.1.2.3:8080"):
        settings.COMMS_LLM_BASE_URL = url
        answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {}, format="json")
        assert answer.status_code == 502 and "refused address" in answer.json()["message"]


def test_make_run_starts_the_stand_in_and_points_the_assistant_at_it(admin_api, settings):
    import subprocess

    from comms.devserver.up_standins import _llm_standin

    env, lines = {}, []
    spec = _llm_standin(env, lines)
    assert env["COMMS_LLM_BASE_URL"].endswith("/v1") and "assistant" in lines[0]
    assert _llm_standin({"COMMS_LLM_BASE_URL": "http://model.example:8080"}, []) == {}  # a real one wins
    child = subprocess.Popen(spec["llm"]["cmd"], stdout=subprocess.PIPE, text=True)
    try:
        assert "LLM stand-in on" in child.stdout.readline()
        settings.COMMS_LLM_BASE_URL, settings.COMMS_LLM_MODEL = env["COMMS_LLM_BASE_URL"], env["COMMS_LLM_MODEL"]
        admin_api.post("/api/v1/templates", order_template_data(), format="json")
        answer = admin_api.post("/api/v1/templates/order_confirmation/assist/subjects", {}, format="json")
        assert answer.status_code == 200 and len(answer.json()["suggestions"]) == 5
    finally:
        child.terminate()
        child.wait(timeout=10)
