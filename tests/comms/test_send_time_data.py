"""Send-time inputs read from the database: engagement by hour of week from a real open through our
tracking pixel, and quiet windows as preferences stores them."""

from __future__ import annotations

import re
from datetime import time

import pytest
from django.utils import timezone

from comms.models import Recipient
from tracking.send_time import engagement_profiles, hour_of_week, quiet_windows
from delivery.models import Message
from delivery.services import drain_all
from preferences.models import QuietHours
from tests.comms.router_fixtures import live_template

pytestmark = pytest.mark.django_db


def test_a_real_open_lands_in_the_recipients_hour_of_week(client, admin_api, tenant, smtp_sink):
    live_template(tenant, "hello", subject="Hi", body_html="<p>Hi</p>", channels=["email"])
    alice = Recipient.objects.create(tenant=tenant, external_id="alice", email="alice@example.com")
    bob = Recipient.objects.create(tenant=tenant, external_id="bob", email="bob@example.com")
    assert admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "alice", "template": "hello"},
                          format="json").status_code in (201, 202)
    drain_all()
    message = Message.objects.get()
    mail = smtp_sink.by_comms_id()[str(message.id)][0]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    pixel = re.search(r'/o/([^"]+)[.]gif', html).group(1)
    assert client.get(f"/o/{pixel}.gif").status_code == 200
    population, own = engagement_profiles(tenant_id=tenant.pk, recipient_ids=[alice.pk, bob.pk])
    hour = hour_of_week(timezone.now())
    # the open is stamped now (or in the previous second, across an hour boundary at worst)
    assert sum(population) == 1 and sum(own[str(alice.pk)]) == 1
    assert own[str(alice.pk)].index(1) in (hour, (hour - 1) % 168)
    assert sum(own[str(bob.pk)]) == 0


def test_quiet_windows_default_general_and_category_rows(tenant):
    a = Recipient.objects.create(tenant=tenant, external_id="a", email="a@example.com", timezone="Europe/Berlin")
    b = Recipient.objects.create(tenant=tenant, external_id="b", email="b@example.com")
    c = Recipient.objects.create(tenant=tenant, external_id="c", email="c@example.com")
    QuietHours.objects.create(tenant=tenant, recipient=b, start=time(22), end=time(7), channels=["email"])
    QuietHours.objects.create(tenant=tenant, recipient=c, start=time(22), end=time(7), channels=["email"])
    QuietHours.objects.create(tenant=tenant, recipient=c, category="marketing", start=time(20), end=time(9),
                              channels=["email"], timezone="Asia/Tokyo")
    email = quiet_windows(recipient_ids=[a.pk, b.pk, c.pk], channel="email", category="marketing")
    assert email[str(a.pk)] is None  # no row: the default holds SMS and push only
    assert email[str(b.pk)] == (time(22), time(7), "UTC")
    assert email[str(c.pk)] == (time(20), time(9), "Asia/Tokyo")  # the category row wins
    sms = quiet_windows(recipient_ids=[a.pk, b.pk], channel="sms")
    assert sms[str(a.pk)] == (time(21), time(8), "Europe/Berlin") and sms[str(b.pk)] is None
