"""The asynchronous path: a request is stored and answered, a real Celery worker applies it."""

from __future__ import annotations

import pytest

from comms.enums import Status
from tests.conftest import wait_for
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_processed_asynchronously_by_a_celery_worker(client, signer, sent_message, celery_worker):
    sg = signer("sendgrid")
    message = sent_message()
    assert sg.sign(sg.events(ref=message.provider_ref, event="delivered")).send(client).status_code == 200
    assert WebhookEvent.objects.get().state == "received"  # answered before any processing
    celery_worker(queues="p2", name="webhooks")
    wait_for(lambda: WebhookEvent.objects.filter(state="processed").exists(), timeout=60, message="processing")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
