"""APNs in the admin provider config, the console's per-provider tables and /metrics."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model

from comms.devserver.standins.apns import signing_key
from delivery import health
from delivery.models import ChannelProvider

pytestmark = pytest.mark.django_db
APNS = "delivery.providers.apns.ApnsProvider"


@pytest.fixture
def ops(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def _form(**extra):
    return {"channel": "push", "name": "apns", "provider_class": APNS, "order": 2, "status": "active",
            "options": json.dumps({"team_id": "TEAM123456", "topic": "com.example.shop"}),
            "created_at_0": "2026-01-02", "created_at_1": "03:04:05", **extra}


def test_an_apns_row_without_its_key_is_refused_with_the_reason(ops):
    page = ops.get("/admin/delivery/channelprovider/add/").content.decode()
    assert APNS in page and 'name="credentials_json"' in page
    response = ops.post("/admin/delivery/channelprovider/add/", _form(credentials_json='{"key_id": "KEY1234567"}'))
    assert response.status_code == 200 and "APNs needs private_key" in response.content.decode()
    assert not ChannelProvider.objects.exists()
    response = ops.post("/admin/delivery/channelprovider/add/", _form(credentials_json="[1]"))
    assert "Credentials are a JSON object." in response.content.decode()


def test_an_apns_row_is_saved_with_encrypted_credentials_never_shown_again(ops):
    key = signing_key()
    response = ops.post("/admin/delivery/channelprovider/add/",
                        _form(credentials_json=json.dumps({"key_id": "KEY1234567", "private_key": key})))
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ChannelProvider.objects.get(name="apns")
    assert row.credentials == {"key_id": "KEY1234567", "private_key": key}
    assert "PRIVATE KEY" not in row.credentials_encrypted
    page = ops.get(f"/admin/delivery/channelprovider/{row.pk}/change/").content.decode()
    assert "PRIVATE KEY" not in page and "KEY1234567" not in page
    # Editing other fields with the credentials box left empty keeps the stored secrets.
    response = ops.post(f"/admin/delivery/channelprovider/{row.pk}/change/", _form(rate_limit=500))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.rate_limit == 500 and row.credentials["private_key"] == key


def test_apns_appears_in_the_console_provider_table_and_metrics(client, settings):
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS, "push": ["delivery.providers.fcm.FcmProvider", APNS]}
    health.record("apns", healthy=True, latency_ms=12.0, code="")
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    html = client.get("/console/").content.decode()
    table = re.search(r'<table id="providers">(.*?)</table>', html, re.S).group(1)
    assert "<td>push · apns</td>" in table, table[:1500]
    metrics = client.get("/metrics").content.decode()
    assert 'comms_provider_circuit_open{channel="push",provider="apns"} 0.0' in metrics
