"""Push feedback prunes devices through the kernel (comms.services.devices_disable), in one tenant only."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
from standardwebhooks.webhooks import Webhook

from comms.models import Device, Recipient
from tests.webhooks.signers import Req
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db


def _feedback(push, data: dict) -> Req:
    body = json.dumps({"type": "push.token_invalid", "data": data})
    msg_id, when = "msg_" + secrets.token_hex(8), dt.datetime.now(tz=dt.timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": Webhook(push.secret).sign(msg_id, when, body)}
    return Req(push.path, body.encode(), "application/json", headers)


def _devices(tenant, other_tenant, token: str) -> tuple[Device, Device]:
    mine = Device.objects.create(tenant=tenant, token=token, platform="android",
                                 recipient=Recipient.objects.create(tenant=tenant, external_id="u1"))
    theirs = Device.objects.create(tenant=other_tenant, token=token, platform="android",
                                   recipient=Recipient.objects.create(tenant=other_tenant, external_id="u1"))
    return mine, theirs


def test_feedback_without_a_tenant_prunes_the_default_tenants_device_only(client, signer, tenant, other_tenant):
    mine, theirs = _devices(tenant, other_tenant, "tok-shared")
    assert _feedback(signer("push"), {"token": "tok-shared", "reason": "UNREGISTERED"}).send(client).status_code == 200
    webhooks_process_pending()
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert (mine.disabled_at is not None, mine.disabled_reason) == (True, "push feedback: UNREGISTERED")
    assert (theirs.disabled_at, theirs.disabled_reason) == (None, "")
    assert WebhookEvent.objects.get().error == "1 device(s) pruned"  # the processing note


def test_feedback_naming_a_tenant_prunes_that_tenants_device_only(client, signer, tenant, other_tenant):
    mine, theirs = _devices(tenant, other_tenant, "tok-shared")
    _feedback(signer("push"), {"token": "tok-shared", "reason": "NOT_FOUND", "tenant": other_tenant.slug}).send(client)
    webhooks_process_pending()
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.disabled_at is None
    assert (theirs.disabled_at is not None, theirs.disabled_reason) == (True, "push feedback: NOT_FOUND")


def test_feedback_naming_an_unknown_tenant_prunes_nothing(client, signer, tenant, other_tenant):
    mine, theirs = _devices(tenant, other_tenant, "tok-shared")
    _feedback(signer("push"), {"token": "tok-shared", "tenant": "nobody"}).send(client)
    webhooks_process_pending()
    assert not Device.objects.filter(disabled_at__isnull=False).exists()
    row = WebhookEvent.objects.get()
    assert (row.state, row.error) == ("flagged", "unknown tenant 'nobody': device kept")
