"""The signature matrix: every provider × (valid, tampered body, wrong key, timestamp skew, missing header).

Rows that fail verification are stored (signature_valid=false, state rejected), answered 401, and
never processed; valid ones are stored, answered 200 and processed. Postmark (basic auth) and
Twilio (HMAC over URL + fields) carry no timestamp, and Postmark's auth does not cover the body:
those cells do not exist for them.
"""

from __future__ import annotations

import pytest

from tests.webhooks.signers import SIGNERS
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db

CASES = ["valid", "tampered", "wrong_key", "skew", "missing_header"]
MATRIX = [(p, c) for p, cls in SIGNERS.items() for c in CASES
          if not (c == "skew" and not cls.has_timestamp) and not (p == "postmark" and c == "tampered")
          and not (c == "tampered" and not getattr(cls, "signs_body", True))]  # basic auth (Bandwidth)


@pytest.mark.parametrize("provider,case", MATRIX)
def test_signature_matrix(client, signer, sent_message, provider, case):
    s = signer(provider)
    message = sent_message(channel="sms" if provider == "twilio" else "email",
                           address="+14155550123" if provider == "twilio" else "ada@example.com")
    ref = message.provider_ref
    if provider == "push":
        from comms.models import Device, Recipient

        recipient = Recipient.objects.create(tenant=message.tenant, external_id="u1")
        Device.objects.create(tenant=message.tenant, recipient=recipient, token="tok-1", platform="android")
        ref = "tok-1"
    response = s.case(case, ref).send(client)
    row = WebhookEvent.objects.get()
    assert row.provider == provider
    webhooks_process_pending()
    row.refresh_from_db()
    if case == "valid":
        assert response.status_code == 200, response.content
        assert row.signature_valid is True and row.state in ("processed", "flagged")
        if provider == "push":
            assert Device.objects.get(token="tok-1").disabled_at is not None
        else:
            assert MessageEvent.objects.filter(message=message).exists()
    else:
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
        assert row.signature_valid is False and row.state == "rejected" and row.signature_error
        assert row.body  # the raw request is kept for audit
        assert not MessageEvent.objects.exists()
        if provider == "push":
            assert Device.objects.get(token="tok-1").disabled_at is None
