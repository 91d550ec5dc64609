"""GDPR erasure touches exactly the person's rows in every app's tables, and reports the same counts.

The erasure is one use case in preferences, but each app erases its own tables (delivery: messages,
log lines, inbox, artifacts; tracking: events; webhooks: raw bodies) through the kernel's eraser
registry. This pins what is erased and what is kept, row by row, so moving an eraser between apps
cannot widen or narrow it.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from comms.models import Device, Recipient
from delivery.models import DeliveryLog, InAppNotification, Message
from preferences.services import recipient_erase
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def _message(tenant, **fields) -> Message:
    return Message.objects.create(tenant=tenant, status="sent", sent_at=timezone.now(), subject="Hola",
                                  body="Tu reserva", variables={"name": "Ana"}, **fields)


def test_erasure_removes_the_persons_data_and_keeps_everyone_elses(tenant, other_tenant, person):
    other = Recipient.objects.create(tenant=tenant, external_id="u-2", email="bo@example.com")
    artifact = storages["artifacts"].save("erasure-test/ana.json", ContentFile(b'{"to": "ana@example.com"}'))
    mine = _message(tenant, channel="email", recipient=person, recipient_address=person.email, artifact=artifact)
    adhoc = _message(tenant, channel="sms", recipient_address=person.phone)  # to the number, no recipient named
    theirs = _message(tenant, channel="email", recipient=other, recipient_address=other.email)
    elsewhere = _message(other_tenant, channel="sms", recipient_address=person.phone)  # another tenant's customer
    quoting = DeliveryLog.objects.create(message=mine, event="failed", detail="550 <ANA@example.com> unknown")
    plain = DeliveryLog.objects.create(message=mine, event="sent", detail="250 ok")
    their_line = DeliveryLog.objects.create(message=theirs, event="failed", detail="550 <bo@example.com> unknown")
    InAppNotification.objects.create(tenant=tenant, recipient=person, message=mine, title="Hola Ana")
    InAppNotification.objects.create(tenant=tenant, recipient=other, message=theirs, title="Hola Bo")
    Device.objects.create(tenant=tenant, recipient=person, token="tok-ana-1", platform="android")
    my_event = MessageEvent.objects.create(tenant=tenant, message_id=mine.id, event_type="opened", provider="comms",
                                           recipient_address=person.email, user_agent="Firefox/ana")
    their_event = MessageEvent.objects.create(tenant=tenant, message_id=theirs.id, event_type="opened",
                                              provider="comms", recipient_address=other.email, user_agent="Safari/bo")
    my_hook = WebhookEvent.objects.create(provider="twilio_sms", body="From=%2B14155550123&Body=STOP",
                                          payload={"From": person.phone})
    their_hook = WebhookEvent.objects.create(provider="twilio_sms", body="From=%2B14155550999&Body=STOP",
                                             payload={"From": "+14155550999"})

    done = recipient_erase(recipient=person)

    done.pop("pseudonym")
    assert done == {"suppressed": 2, "consent_redacted": 0, "messages": 2, "log_lines_dropped": 1, "inbox": 1,
                    "devices": 1, "erase_tracking_events": 1, "erase_webhook_bodies": 1}
    for erased in (mine, adhoc):
        erased.refresh_from_db()
        assert (erased.recipient_address, erased.subject, erased.body, erased.variables, erased.artifact) == \
            ("erased", "", "", {}, "")
    for kept, address in ((theirs, other.email), (elsewhere, person.phone)):
        kept.refresh_from_db()
        assert (kept.recipient_address, kept.subject, kept.variables) == (address, "Hola", {"name": "Ana"})
    assert set(DeliveryLog.objects.values_list("pk", flat=True)) == {plain.pk, their_line.pk} and quoting.pk
    assert list(InAppNotification.objects.values_list("recipient_id", flat=True)) == [other.pk]
    assert not storages["artifacts"].exists(artifact)
    my_event.refresh_from_db(), their_event.refresh_from_db()
    assert (my_event.recipient_address, my_event.user_agent, my_event.event_type) == ("", "", "opened")
    assert (their_event.recipient_address, their_event.user_agent) == (other.email, "Safari/bo")
    my_hook.refresh_from_db(), their_hook.refresh_from_db()
    assert (my_hook.body, my_hook.payload) == ("", None)
    assert their_hook.body.startswith("From=%2B14155550999")


def test_every_app_holding_copies_registers_its_eraser():
    from comms.erasure import erasers

    names = {f"{e.__module__}.{e.__name__}" for e in erasers()}
    assert {"delivery.services.erasure.message_data_erase", "tracking.services.erasure.erase_tracking_events",
            "webhooks.erasure.erase_webhook_bodies"} <= names
