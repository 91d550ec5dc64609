"""R6 (webhooks): a storm of identical provider webhooks and out-of-order pairs apply each event once."""

from __future__ import annotations

import base64
import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from delivery.models import DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue
from tests.conftest import serving
from tests.webhooks.signers import fixture
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db(transaction=True)


def _sent(tenant, address: str) -> Message:
    message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=address, subject="s", body="b"))
    drain_all()
    message.refresh_from_db()
    assert message.status == "sent" and message.provider_ref
    return message


def test_webhook_storm_and_out_of_order_pairs_apply_each_event_once(tenant, smtp_sink, monkeypatch):
    auth = "postmark:" + secrets.token_urlsafe(12)
    monkeypatch.setenv("COMMS_POSTMARK_WEBHOOK_AUTH", auth)  # for the gunicorn process below
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
               "Content-Type": "application/json"}
    storm_target = _sent(tenant, "storm@example.com")
    in_order, reversed_ = _sent(tenant, "a@example.com"), _sent(tenant, "b@example.com")

    def bounce(m: Message, event_id: int) -> str:
        return fixture("postmark/bounce.json", id=event_id, bounce_kind="HardBounce", ref=m.provider_ref,
                       address=m.recipient_address)

    def delivery(m: Message) -> str:
        return fixture("postmark/delivery.json", ref=m.provider_ref, address=m.recipient_address)

    with serving(lambda port: ["gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
                               "-k", "gthread", "--threads", "8", "--log-level", "warning"], "gunicorn") as url:
        def post(body: str) -> int:
            return httpx.post(f"{url}/webhooks/postmark", content=body, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=25) as pool:  # the provider retries one event 50 times at once
            codes = list(pool.map(post, [bounce(storm_target, 777)] * 30))
        codes += [post(delivery(in_order)), post(bounce(in_order, 778))]  # natural order
        codes += [post(bounce(reversed_, 779)), post(delivery(reversed_))]  # the bounce overtook the delivery
    assert set(codes) == {200}, codes
    assert WebhookEvent.objects.count() == 34  # every request is stored raw ...
    webhooks_process_pending()
    webhooks_process_pending()  # ... and processing twice changes nothing
    assert MessageEvent.objects.filter(message=storm_target).count() == 1  # ... but applied once
    assert DeliveryLog.objects.filter(message=storm_target, event="bounced").count() == 1
    for m in (in_order, reversed_):
        assert sorted(MessageEvent.objects.filter(message=m).values_list("event_type", flat=True)) == \
            ["bounced", "delivered"]
    in_order.refresh_from_db()
    reversed_.refresh_from_db()
    assert in_order.status == reversed_.status == "bounced"  # the order of arrival does not matter
