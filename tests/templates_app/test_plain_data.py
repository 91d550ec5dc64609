"""Templates read plain data only: never a Python attribute, never a callable, never a dict's repr.

pybars resolved ``{{a.b}}`` with getattr and called what it found: ``{{name.upper}}`` and
``{{this.items}}`` answered 500 on preview and submit, ``{{__class__}}`` too, and
``{{name.__class__}}`` printed every variable (unsubscribe and preference URLs included).
"""

from __future__ import annotations

import pytest

from delivery.models import Message
from templates_app import rendering, services
from templates_app.models import Template, TemplateLocale

pytestmark = pytest.mark.django_db

STATIC = ["{{__class__}}", "{{this.__class__}}", "{{name.__class__}}", "{{this.[__init__]}}"]
DYNAMIC = ["{{name.upper}}", "{{this.items}}"]
VARIABLES = {"name": "Ada", "items": ["first", "second"]}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "items": {"type": "array"}}}
TEXT_PARTS = ["subject", "body_text", "sms_text", "push_body"]
CHANNELS = ["email", "sms", "push", "in_app"]


def _locale(expr: str = "{{name}}") -> dict:
    return {"locale": "en-US", "subject": f"Hi {expr}", "body_html": f"<p>Hello {expr}</p>",
            "body_text": f"Hello {expr}", "sms_text": f"Hello {expr}", "push_title": "Hi",
            "push_body": f"Hello {expr}", "in_app_content": {"title": "Hi", "body": f"Hello {expr}"}}


def _data(key: str = "plain", **locale) -> dict:
    return {"template_key": key, "name": key, "category": "transactional", "channels": CHANNELS,
            "variables_schema": SCHEMA, "sample_variables": VARIABLES, "locales": [{**_locale(), **locale}]}


def _put_in_every_part(template: Template, expr: str) -> None:
    """What a version saved before names were checked looks like (the API refuses it now)."""
    TemplateLocale.objects.filter(version__template=template).update(**{
        k: v for k, v in _locale(expr).items() if k != "locale"})
    rendering.compiled.clear()


def _assert_no_leak(text: str) -> None:
    for leaked in ("unsubscribe_url", "preferences_url", "{'", "['", "<built-in", "<bound", "<class"):
        assert leaked not in text, text


# --- compile time -------------------------------------------------------------------------------------

@pytest.mark.parametrize("expr", STATIC)
@pytest.mark.parametrize("part", ["subject", "body_html", "body_text", "sms_text", "push_body", "in_app_content"])
def test_python_internals_are_refused_at_their_line_and_column(admin_api, expr, part):
    source = f"Line one\n  Hello {expr}"
    locale = {part: {"title": "Hi", "body": source} if part == "in_app_content" else source}
    response = admin_api.post("/api/v1/templates", _data(**locale), format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "COMMS_TEMPLATE_INVALID" and "starting with '_'" in body["message"]
    assert body["details"]["part"] == ("in_app_content.body" if part == "in_app_content" else part)
    name = expr.strip("{}").split(".")[-1].strip("[]")
    assert (body["details"]["line"], body["details"]["column"]) == (2, 9 + expr.index(name))
    assert not Template.objects.exists()


def test_a_block_or_helper_argument_naming_internals_is_refused():
    for source in ("{{#__class__}}x{{/__class__}}", "{{formatNumber this.__dict__}}", "{{#if (eq _x 1)}}y{{/if}}",
                   "{{#each items}}{{../__class__}}{{/each}}", "{{@root.__class__}}"):
        with pytest.raises(rendering.TemplateSyntaxError, match="starting with '_'"):
            rendering.compile_handlebars(source, part="body_text")


def test_lists_objects_and_parents_still_resolve():
    fn = rendering.compile_handlebars(
        "{{#each items}}{{@index}}:{{this}}/{{../name}} {{/each}}{{items.length}} {{items.1}} {{lookup obj 'k'}}"
        "{{#with obj}} {{k}}{{/with}}{{#each obj}} {{@key}}={{this}}{{/each}}", part="body_text")
    problems: list[str] = []
    out = rendering.render_part(fn, {**VARIABLES, "obj": {"k": "v"}}, rendering.make_helpers("en-US", "UTC",
                                                                                              trusted=False), problems)
    assert out == "0:first/Ada 1:second/Ada 2 second v v k=v" and problems == []


# --- preview, submit and send --------------------------------------------------------------------------

@pytest.mark.parametrize("expr", DYNAMIC)
def test_preview_reports_reads_that_are_not_data(admin_api, expr):
    assert admin_api.post("/api/v1/templates", _data(**_locale(expr)), format="json").status_code == 201
    response = admin_api.post("/api/v1/templates/plain/preview", {"variables": VARIABLES}, format="json")
    assert response.status_code == 200, response.content
    _assert_no_leak(response.content.decode())
    channels = response.json()["channels"]
    for channel in CHANNELS:
        assert any("upper" in p or "list is printed" in p for p in channels[channel]["problems"]), channels[channel]
    assert channels["sms"]["text"] == "Hello"


@pytest.mark.parametrize("expr", STATIC)
def test_preview_of_a_version_saved_with_internals_reports_it(admin_api, expr):
    admin_api.post("/api/v1/templates", _data(), format="json")
    _put_in_every_part(Template.objects.get(), expr)
    response = admin_api.post("/api/v1/templates/plain/preview", {"variables": VARIABLES}, format="json")
    assert response.status_code == 200, response.content
    _assert_no_leak(response.content.decode())
    for channel in CHANNELS:
        assert any("starting with '_'" in p for p in response.json()["channels"][channel]["problems"])


@pytest.mark.parametrize("expr", STATIC + DYNAMIC)
def test_submit_refuses_a_template_that_reads_beyond_data(admin_api, expr):
    if expr in DYNAMIC:
        assert admin_api.post("/api/v1/templates", _data(**_locale(expr)), format="json").status_code == 201
    else:
        admin_api.post("/api/v1/templates", _data(), format="json")
        _put_in_every_part(Template.objects.get(), expr)
    response = admin_api.post("/api/v1/templates/plain/submit")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "COMMS_TEMPLATE_INVALID"
    _assert_no_leak(response.content.decode())
    assert Template.objects.get().versions.get().status == "draft"


@pytest.fixture
def live(tenant, editor, approver):
    def make(expr: str) -> Template:
        template = services.template_create(tenant=tenant, actor=editor, user=editor, data=_data())
        version = template.versions.get()
        services.version_submit(version=version, actor=editor, user=editor)
        services.version_approve(version=version, user=approver)
        _put_in_every_part(template, expr)
        return template

    return make


@pytest.mark.parametrize("channel", ["email", "in_app"])
@pytest.mark.parametrize("expr", STATIC + DYNAMIC)
def test_send_is_refused_with_a_typed_error_and_nothing_is_written(api, admin_api, live, expr, channel):
    live(expr)
    admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json")
    response = api.post("/api/v1/messages", {"channel": channel, "recipient_id": "u-1", "template": "plain",
                                             "variables": VARIABLES}, format="json")
    assert response.status_code in (400, 422), response.content
    expected = "COMMS_TEMPLATE_INVALID" if expr in STATIC else "COMMS_TEMPLATE_RENDER"
    assert response.json()["code"] == expected
    _assert_no_leak(response.content.decode())
    assert not Message.objects.exists()


def test_a_read_into_a_missing_value_renders_empty_as_before(api, admin_api, live, smtp_sink):
    from delivery.services import drain_all

    live("{{name.first}}")  # `name` not given: nothing to read from, like a missing variable
    response = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "template": "plain",
                                             "variables": {"items": []}}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    [mail] = smtp_sink.messages
    assert mail["Subject"] == "Hi"
