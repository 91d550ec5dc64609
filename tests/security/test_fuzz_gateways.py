"""The Postal, Bandwidth and Vonage webhook parsers on arbitrary bodies that passed a signature check: a
changed format ends as a typed error the row records (Malformed / anymail's), never another exception,
and a body that passes the shape check always parses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from tests.security.test_fuzz import FUZZ, JSON
from webhooks.intake import Malformed, parse_payload
from webhooks.models import WebhookEvent
from webhooks.registry import provider_for

SHAPED = {
    "postal": st.fixed_dictionaries({"event": st.sampled_from(["MessageSent", "MessageBounced", "MessageLinkClicked",
                                                                "MessageLoaded", "DomainDNSError", "X"]) | JSON},
                                    optional={"payload": st.fixed_dictionaries({}, optional={
                                        "message": JSON, "original_message": JSON, "status": JSON, "url": JSON,
                                        "bounce": JSON, "details": JSON}) | JSON, "uuid": JSON, "timestamp": JSON}),
    "bandwidth": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["message-delivered", "message-failed",
                                                                          "x"]) | JSON},
                                                optional={"message": st.fixed_dictionaries({}, optional={
                                                    "id": JSON, "tag": JSON}) | JSON, "errorCode": JSON,
                                                    "time": JSON, "to": JSON}), max_size=3),
    "vonage": st.fixed_dictionaries({"status": st.sampled_from(["delivered", "failed", "expired", "x"]) | JSON},
                                    optional={"messageId": JSON, "msisdn": JSON, "err-code": JSON,
                                              "client-ref": JSON, "message-timestamp": JSON}),
}


@pytest.mark.parametrize("provider", sorted(SHAPED))
def test_gateway_parsers_never_crash(provider, db):
    cls = provider_for(provider)

    @FUZZ
    @given(body=st.one_of(SHAPED[provider].map(json.dumps), st.text(max_size=200), JSON.map(json.dumps)))
    def run(body):
        try:
            payload = parse_payload(body.encode(), "application/json")
        except Malformed:
            payload = None
        row = WebhookEvent(provider=provider, content_type="application/json", headers={}, body=body, payload=payload)
        try:
            events = cls.normalise(row)
        except Exception as exc:  # noqa: BLE001 - the point: which exceptions
            from anymail.exceptions import AnymailError

            assert isinstance(exc, (Malformed, AnymailError)), repr(exc)
            shaped_ok = True
            try:
                cls().check_shape(payload)
            except Malformed:
                shaped_ok = False
            assert not shaped_ok or provider == "postal", f"passed check_shape, then failed to parse: {exc!r}"
            return
        assert isinstance(events, list)

    run()
