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
