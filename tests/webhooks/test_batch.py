"""Set-based processing (issue 21): a batch of stored webhooks ends exactly where one-by-one processing
ends, applies each provider event once, keeps orphans and poison rows to themselves, and a worker
killed mid-batch loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from preferences.models import Suppression
from tests.conftest import ROOT, worker_env
from tracking.models import CampaignMetrics, FirstEvent, MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process, webhooks_process_batch, webhooks_process_pending
from webhooks.tasks import process

T0 = int(time.time()) - 600
# (event, seconds after T0) per message, in the order the provider posts them (one post each).
SCRIPT = [
    [("delivered", 0)],
    [("delivered", 0), ("bounce", 5)],
    [("bounce", 5), ("delivered", 0)],  # the bounce overtook the delivery: status stays bounced
    [("delivered", 0), ("spamreport", 9)],
    [("delivered", 0), ("open", 30), ("click", 40), ("open", 50)],
    [("processed", 0)],  # SendGrid's 'processed' records an event and moves nothing
]


def _post_all(client, sg, messages, prefix: str) -> None:
    for i, (message, events) in enumerate(zip(messages, SCRIPT)):
        for j, (kind, dt) in enumerate(events):
            body = sg.events(ref=message.provider_ref, address=message.recipient_address, event=kind,
                             event_id=f"{prefix}-{i}-{j}", ts=T0 + dt)
            assert sg.sign(body).send(client).status_code == 200


def _end_state(messages) -> list:
    out = []
    for m in messages:
        m.refresh_from_db()
        events = sorted(MessageEvent.objects.filter(message=m).values_list("event_type", "bounce_type"))
        logs = sorted(DeliveryLog.objects.filter(message=m).values_list("event", flat=True))
        moved = sorted(e for e, changed in DeliveryLog.objects.filter(message=m).values_list(
            "event", "data__status_changed") if changed)
        suppressed = [s.reason for s in Suppression.objects.all() if s.address == m.recipient_address]
        firsts = sorted(FirstEvent.objects.filter(message_id=m.id).values_list("event_type", flat=True))
        out.append((m.status, m.failed_at is not None, events, logs, suppressed, firsts, moved))
    return out


@pytest.mark.django_db
def test_mixed_batch_ends_like_one_by_one(client, signer, sent_message, settings):
    sg = signer("sendgrid")
    one = [sent_message(address=f"one{i}@example.com", metadata={"campaign_id": "c-one"}) for i in range(len(SCRIPT))]
    batch = [sent_message(address=f"bat{i}@example.com", metadata={"campaign_id": "c-bat"})
             for i in range(len(SCRIPT))]
    _post_all(client, sg, one, "one")
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)  # one row, one transaction, in arrival order
    _post_all(client, sg, batch, "bat")
    pending = WebhookEvent.objects.filter(state="received").count()
    assert pending == sum(len(s) for s in SCRIPT)
    assert len(webhooks_process_batch(ids=[], fill=True)) == pending  # one batch, one transaction
    batch_state, one_state = _end_state(batch), _end_state(one)
    assert [s[:-1] for s in batch_state] == [s[:-1] for s in one_state]
    # Which events moved the status is the same too, except where arrival and event time disagree: a
    # batch walks a message's events in the provider's time order, so the delivery reported before
    # the bounce is recorded as a step (delivered_at kept) although its webhook came second.
    assert [s[-1] for i, s in enumerate(batch_state) if i != 2] == [s[-1] for i, s in enumerate(one_state) if i != 2]
    assert (one_state[2][-1], batch_state[2][-1]) == (["bounced"], ["bounced", "delivered"])
    assert batch[2].delivered_at is not None and one[2].delivered_at is None
    counters = [f"{c}_count" for c in CampaignMetrics.COUNTERS]
    one_row, bat_row = (CampaignMetrics.objects.values_list(*counters).get(key=k) for k in ("c-one", "c-bat"))
    assert bat_row == one_row and sum(bat_row) == 12  # 5 delivered, 2 bounced (+2 hard), complaint, open, click
    assert [m.status for m in batch] == [Status.DELIVERED, Status.BOUNCED, Status.BOUNCED, Status.COMPLAINED,
                                         Status.DELIVERED, Status.SENT]
    assert set(WebhookEvent.objects.values_list("state", "events_applied")) == {("processed", 1)}


@pytest.mark.django_db
def test_batch_statements_do_not_grow_with_the_events(client, signer, sent_message, settings,
                                                      django_assert_max_num_queries):
    """A batch costs a fixed number of statements, not ~10 per event."""
    sg = signer("sendgrid")
    messages = [sent_message(address=f"q{i}@example.com") for i in range(60)]
    for i, m in enumerate(messages):
        kind = ("delivered", "open", "bounce")[i % 3]
        sg.sign(sg.events(ref=m.provider_ref, address=m.recipient_address, event=kind)).send(client)
    with django_assert_max_num_queries(20):
        assert webhooks_process_pending() == 60
    assert MessageEvent.objects.count() == 60 and Suppression.objects.count() == 20
    assert Message.objects.filter(status="bounced").count() == 20


@pytest.mark.django_db
def test_duplicates_in_a_batch_and_across_batches_apply_once(client, signer, sent_message):
    sg = signer("sendgrid")
    message = sent_message()
    body = sg.events(ref=message.provider_ref, event="bounce", event_id="sg-dup-1")
    for _ in range(3):
        sg.sign(body).send(client)
    two = json.loads(body) * 2  # one post holding the same event twice
    sg.sign(json.dumps(two)).send(client)
    webhooks_process_pending()
    sg.sign(body).send(client)  # a later redelivery, in a batch of its own
    webhooks_process_pending()
    assert MessageEvent.objects.filter(message=message).count() == 1
    assert DeliveryLog.objects.filter(message=message, event="bounced").count() == 1
    assert Suppression.objects.count() == 1
    rows = list(WebhookEvent.objects.order_by("pk").values_list("events_applied", "events_duplicate"))
    assert rows == [(1, 0), (0, 1), (0, 1), (0, 2), (0, 1)]
    message.refresh_from_db()
    assert message.status == Status.BOUNCED


@pytest.mark.django_db
def test_unknown_message_waits_as_before_while_the_batch_applies(client, signer, sent_message, settings):
    settings.COMMS_WEBHOOK_ORPHAN_BACKOFF = [0]
    sg = signer("sendgrid")
    known = sent_message()
    sg.sign(sg.events(ref="nobody-yet", event="delivered")).send(client)
    sg.sign(sg.events(ref=known.provider_ref, event="delivered")).send(client)
    webhooks_process_pending()
    orphan, good = WebhookEvent.objects.order_by("pk")
    assert (orphan.state, orphan.events_orphan, orphan.attempts) == ("retrying", 1, 1)
    assert (good.state, good.events_applied) == ("processed", 1)
    late = sent_message(ref="nobody-yet", address="late@example.com")
    webhooks_process_batch(ids=[orphan.pk], fill=False)
    orphan.refresh_from_db()
    late.refresh_from_db()
    assert orphan.state == "processed" and late.status == Status.DELIVERED


@pytest.mark.django_db
def test_poison_row_fails_alone_and_the_rest_apply(client, signer, sent_message):
    sg = signer("sendgrid")
    a, b = sent_message(address="a@example.com"), sent_message(address="b@example.com")
    sg.sign(sg.events(ref=a.provider_ref, address=a.recipient_address, event="delivered")).send(client)
    # Signed and stored, but one field holds a NUL the database cannot store in an event row: the
    # intake keeps such bodies as text (stored before anything else), so processing meets it.
    poison = json.loads(sg.events(ref=b.provider_ref, address=b.recipient_address, event="delivered"))
    poison[0]["response"] = "250 queued \u0000 as 12345"
    WebhookEvent.objects.create(provider="sendgrid", body=json.dumps(poison), content_type="application/json",
                                signature_valid=True, state="received")
    sg.sign(sg.events(ref=b.provider_ref, address=b.recipient_address, event="open")).send(client)
    assert webhooks_process_pending() == 3
    first, bad, last = WebhookEvent.objects.order_by("pk")
    assert (first.state, first.events_applied) == ("processed", 1)
    assert (last.state, last.events_applied) == ("processed", 1)
    assert bad.state == "failed" and bad.error.startswith("DataError") and bad.processed_at is not None
    assert sorted(MessageEvent.objects.values_list("event_type", flat=True)) == ["delivered", "opened"]
    b.refresh_from_db()
    assert b.status == Status.SENT and not DeliveryLog.objects.filter(message=b, event="delivered").exists()


_KILL = """
import os, signal, django
django.setup()
from django.db import connection
from webhooks.services import webhooks_process_pending

def die(execute, sql, params, many, context):
    if "INSERT INTO delivery_deliverylog" in sql:  # events inserted, statuses moved: now the worker dies
        os.kill(os.getpid(), signal.SIGKILL)
    return execute(sql, params, many, context)

with connection.execute_wrapper(die):
    webhooks_process_pending()
"""


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_loses_nothing(client, signer, sent_message, settings):
    sg = signer("sendgrid")
    messages = [sent_message(address=f"k{i}@example.com") for i in range(12)]
    for i, m in enumerate(messages):
        kind = "bounce" if i % 4 == 0 else "delivered"
        sg.sign(sg.events(ref=m.provider_ref, address=m.recipient_address, event=kind)).send(client)
    env = {**worker_env(), "DJANGO_SETTINGS_MODULE": "config.settings",
           "COMMS_SENDGRID_VERIFICATION_KEY": settings.COMMS_SENDGRID_VERIFICATION_KEY}
    run = subprocess.run([sys.executable, "-c", _KILL], cwd=ROOT, env=env, timeout=120)
    assert run.returncode == -signal.SIGKILL
    assert WebhookEvent.objects.filter(state="received").count() == 12  # the batch rolled back whole
    assert not MessageEvent.objects.exists() and Message.objects.filter(status="sent").count() == 12
    assert webhooks_process_pending() == 12  # the rerun applies everything, once
    assert webhooks_process_pending() == 0
    assert MessageEvent.objects.count() == 12 and DeliveryLog.objects.count() == 12
    assert sorted(Message.objects.values_list("status", flat=True).distinct()) == ["bounced", "delivered"]
    assert Suppression.objects.count() == 3
    assert CampaignMetrics.objects.count() == 0  # bare messages count towards no campaign


@pytest.mark.django_db
def test_one_task_applies_the_backlog_and_the_others_find_it_done(client, signer, sent_message):
    sg = signer("sendgrid")
    messages = [sent_message(address=f"t{i}@example.com") for i in range(5)]
    for m in messages:
        sg.sign(sg.events(ref=m.provider_ref, address=m.recipient_address, event="delivered")).send(client)
    first, *others = WebhookEvent.objects.order_by("pk").values_list("pk", flat=True)
    assert process(first) == "processed"  # its own row, and the four received meanwhile
    assert [process(pk) for pk in others] == ["done elsewhere"] * 4
    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    assert MessageEvent.objects.count() == 5
