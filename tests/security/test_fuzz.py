"""Hypothesis fuzzing of what parses hostile input: the Handlebars/MJML renderer and the inbound
webhook parsers. Anything other than a result or a typed error is a crash.

Sizes: COMMS_FUZZ_EXAMPLES examples per property (60 in `make test`; `make security` runs thousands).
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from comms import errors
from templates_app import rendering, sms_encoding

EXAMPLES = int(os.environ.get("COMMS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Template source: mustache fragments and HTML/MJML bits mixed with arbitrary text.
_TOKENS = st.sampled_from([
    "{{", "}}", "{{{", "}}}", "{{#each items}}", "{{/each}}", "{{#if x}}", "{{else}}", "{{/if}}", "{{name}}",
    "{{formatCurrency total 'EUR'}}", "{{formatDate when 'YYYY-MM-DD'}}", "{{pluralize n 'item'}}",
    "{{safeUrl link}}", "{{default a 'b'}}", "{{eq a b}}", "{{> partial}}", "{{!-- c --}}", "{{&x}}", "{{raw x}}",
    "<mjml><mj-body>", "</mj-body></mjml>", "<mj-section><mj-column><mj-text>", "</mj-text></mj-column></mj-section>",
    "<a href=\"{{link}}\">", "</a>", "<table>", "<tr><td>", "</td></tr>", "</table>", "<style>p{color:red}</style>",
    "javascript:alert(1)", "<script>", "\x00", "\ud7ff", "{{../x}}", "{{this}}", "{{@index}}", "{{lookup a b}}",
])
SOURCES = st.lists(st.one_of(_TOKENS, st.text(max_size=20)), max_size=25).map("".join)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=20)
VARIABLES = st.fixed_dictionaries({}, optional={k: JSON for k in ("name", "items", "x", "a", "b", "total", "when",
                                                                  "n", "link", "this")})


@FUZZ
@given(source=SOURCES, variables=VARIABLES, trusted=st.booleans(),
       locale=st.sampled_from(["en-US", "de-DE", "ja-JP", "ar-EG", "xx", ""]))
def test_handlebars_renderer_never_crashes(source, variables, trusted, locale):
    try:
        rendering.check_trusted_syntax(source, trusted=trusted, part="body")
        fn = rendering.compile_handlebars(source, part="body")
    except rendering.TemplateSyntaxError:
        return
    try:
        helpers = rendering.make_helpers(locale or "en-US", "UTC", trusted=trusted)
    except ValueError:  # an unknown locale is refused when the template is saved
        return
    try:
        out = rendering.render_part(fn, variables, helpers)
    except errors.TemplateRenderFailed:
        return
    assert isinstance(out, str)
    rendering.sanitise_urls(out)


def test_partials_are_refused_when_compiled_not_when_sent():
    """Found by this fuzzer: `{{> x}}` compiled, then raised PybarsError at send time (uncaught by the engine)."""
    with pytest.raises(rendering.TemplateSyntaxError, match="partials"):
        rendering.compile_handlebars("Hi {{> footer}}", part="body")


def test_a_panic_inside_the_mjml_engine_is_a_template_error():
    """Found by this fuzzer: mrml panicked (pyo3 PanicException, a BaseException) on a non-BMP character."""
    with pytest.raises(rendering.TemplateSyntaxError):
        rendering.compile_mjml("<mjml><mj-body>{{../x}}\U00038c8e\xdd\U000db902>!</mj-body></mjml>")


@FUZZ
@given(source=SOURCES)
def test_mjml_and_css_inlining_never_crash(source):
    try:
        html = rendering.compile_mjml("<mjml><mj-body>" + source + "</mj-body></mjml>")
    except rendering.TemplateSyntaxError:
        return
    assert isinstance(html, str)
    rendering.guard_urls(html)
    rendering.html_to_text_source(html)


@FUZZ
@given(text=st.text(max_size=400))
def test_sms_helpers_never_crash(text):
    info = sms_encoding.sms_segments(text)
    assert info.segments >= 0
    assert isinstance(sms_encoding.truncate_sms(text, 2), str)


# --- inbound webhook parsers -------------------------------------------------------------------------
def _parser_input(provider: str):
    shaped = {
        "postmark": st.fixed_dictionaries({"RecordType": st.sampled_from(["Bounce", "Delivery", "Open", "Click",
                                                                         "SpamComplaint", "X"]) | JSON},
                                          optional={"MessageID": JSON, "ID": JSON, "Type": JSON, "Email": JSON,
                                                    "Recipient": JSON, "BouncedAt": JSON, "Metadata": JSON}),
        "sendgrid": st.lists(st.fixed_dictionaries({"event": st.sampled_from(["bounce", "delivered", "open",
                                                                             "dropped", "x"]) | JSON},
                                                   optional={"sg_message_id": JSON, "email": JSON,
                                                             "timestamp": JSON, "type": JSON, "sg_event_id": JSON}),
                             max_size=3),
        "mailgun": st.fixed_dictionaries({"signature": JSON, "event-data": st.fixed_dictionaries(
            {"event": st.sampled_from(["delivered", "failed", "opened"]) | JSON},
            optional={"severity": JSON, "id": JSON, "message": JSON, "timestamp": JSON, "recipient": JSON})}),
        "ses": st.fixed_dictionaries({"Type": st.sampled_from(["Notification", "X"]) | JSON},
                                     optional={"Message": JSON.map(json.dumps) | JSON, "MessageId": JSON}),
        "twilio": st.fixed_dictionaries({"MessageStatus": st.sampled_from(["delivered", "failed", "x"]) | JSON},
                                        optional={"MessageSid": JSON, "ErrorCode": JSON, "To": JSON}),
    }[provider]
    return st.one_of(shaped.map(json.dumps), st.text(max_size=200), JSON.map(json.dumps))


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "ses", "twilio"])
def test_inbound_webhook_parsers_never_crash(provider, settings):
    """The parsers run on stored bodies that passed a signature check; a provider bug or a changed
    format must end as a typed error the row records, never an unexpected exception."""
    from anymail.exceptions import AnymailError

    from webhooks.intake import Malformed, parse_payload
    from webhooks.models import WebhookEvent
    from webhooks.registry import provider_for

    typed = (AnymailError, Malformed)

    @FUZZ
    @given(body=_parser_input(provider))
    def run(body):
        content_type = "application/x-www-form-urlencoded" if provider == "twilio" else "application/json"
        if provider == "twilio":
            try:
                body = "&".join(f"{k}={v}" for k, v in json.loads(body).items())
            except (ValueError, AttributeError):
                pass
        try:
            payload = parse_payload(body.encode(), content_type)
        except Malformed:
            payload = None
        row = WebhookEvent(provider=provider, content_type=content_type, headers={}, body=body, payload=payload)
        try:
            events = provider_for(provider).normalise(row)
        except typed:
            return
        assert isinstance(events, list)

    run()
