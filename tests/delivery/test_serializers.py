"""The hand-written response matches the declared (documented) shape."""

import pytest

from delivery.models import Message
from delivery.serializers import MessageDetailSerializer, MessageSerializer

pytestmark = pytest.mark.django_db


def test_message_representation_matches_declared_fields(api):
    message_id = api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com", "subject": "s",
                                               "body": "b"}, format="json").json()["id"]
    message = Message.objects.get(id=message_id)
    assert set(MessageSerializer(message).data) == set(MessageSerializer().fields)
    assert set(MessageDetailSerializer(message).data) == set(MessageDetailSerializer().fields)


def test_openapi_schema_is_served(api, client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/messages" in schema["paths"] and "/api/v1/messages/bulk" in schema["paths"]
    assert client.get("/api/docs/").status_code == 200


# --- the fast validation path gives what DRF gives ---------------------------------------------------
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from comms.serializers import _fast_validated  # noqa: E402
from delivery.serializers import MessageCreateSerializer  # noqa: E402

_TEXT = st.one_of(
    st.text(max_size=8), st.sampled_from(["email", " sms ", "push", "in_app", "webhook", "fax", "", "  ", "P0", "p4",
                                          "high", "3", "marketing", "security", "nope", "a@example.com", "x\x00y",
                                          "\ud800", "2030-01-01T00:00:00Z", "yesterday", "x" * 300]),
)
_VALUE = st.one_of(_TEXT, st.integers(-2, 6), st.booleans(), st.none(), st.floats(allow_nan=False),
                   st.lists(_TEXT, max_size=6), st.dictionaries(st.text(max_size=4), _TEXT, max_size=3))
_KEYS = st.sampled_from(["channel", "to", "recipient_id", "subject", "body", "body_html", "template", "variables",
                         "locale", "priority", "category", "scheduled_for", "metadata", "idempotency_key",
                         "fallback_channels", "unknown"])


def _drf(data) -> dict | None:
    serializer = MessageCreateSerializer(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


def _typed(data: dict) -> dict:
    return {key: (type(value), value) for key, value in data.items()}


@hsettings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.fixed_dictionaries({"channel": st.sampled_from(["email", "sms"]), "to": st.just("a@example.com")}),
       extra=st.dictionaries(_KEYS, _VALUE, max_size=6))
def test_fast_validation_equals_drf(base, extra):
    """Whenever the fast path accepts a body, DRF accepts it too, with the same values of the same types;
    whatever DRF refuses, the fast path hands back to DRF (which then answers the error)."""
    data = {**base, **extra}
    fast, drf = _fast_validated(MessageCreateSerializer, data), _drf(data)
    if drf is None:
        assert fast is None
    elif fast is not None:
        assert _typed(fast) == _typed(drf)


def test_fast_validation_takes_the_ordinary_send():
    """The ordinary shapes do take the fast path (else the test above would prove nothing)."""
    for data in ({"channel": "email", "to": " a@example.com ", "subject": "Hi", "body": "Hello"},
                 {"channel": "sms", "recipient_id": "u1", "template": "otp", "variables": {"code": 1},
                  "priority": "P0", "category": "security", "metadata": {"k": "v"}, "idempotency_key": "k1",
                  "fallback_channels": ["email"], "scheduled_for": None}):
        fast = _fast_validated(MessageCreateSerializer, data)
        assert fast is not None and _typed(fast) == _typed(_drf(data))
    assert _fast_validated(MessageCreateSerializer, {"channel": "email", "to": "a@example.com", "x": 1}) is None
