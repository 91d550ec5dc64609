"""Synthetic probes (issue 19, item 7): an email probe timed to the SMTP sink's Maildir, an SMS probe
delivered by Twilio's stand-in status callbacks through our live webhook, a suppressed sandbox address
(a failed probe, nothing sent), SLO alerts through the ops alert path, and provider pinning."""

from __future__ import annotations

import logging
import mailbox
import os

import pytest

from comms.devserver.standins.twilio import TwilioStandIn
from comms.enums import Status
from comms.services import tenant_get_default
from delivery.deliverability import probes
from delivery.deliverability.models_probes import Probe
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from preferences.services import suppression_add
from tests.conftest import wait_for
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
SID, TOKEN = "AC" + "7" * 32, "probe-callback-token"


@pytest.fixture
def sink_maildir(smtp_sink, tmp_path, settings):
    smtp_sink.maildir = mailbox.Maildir(str(tmp_path / "mail"), create=True)
    settings.COMMS_PROBE_MAILDIR = str(tmp_path / "mail")
    yield smtp_sink
    smtp_sink.maildir = None


@pytest.mark.django_db
def test_email_probe_is_timed_to_sent_and_to_the_sink(sink_maildir, settings, caplog):
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    assert probes.probes_tick() == {"collected": 0, "sent": 1}
    [probe] = Probe.objects.all()
    message = Message.objects.get(pk=probe.message_id)
    assert message.metadata == {"probe": True, "probe_provider": "smtp"}
    drain_all()
    with caplog.at_level(logging.WARNING):
        probes.probes_collect()
    probe.refresh_from_db()
    assert probe.state == Probe.State.DELIVERED and probe.provider == "smtp"
    assert 0 <= probe.sent_seconds <= probe.delivered_seconds < 60 and not probe.slo_missed
    assert "ops alert" not in caplog.text


@pytest.mark.django_db
def test_smtp_without_a_maildir_finishes_at_sent(smtp_sink, settings):
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    settings.COMMS_PROBE_MAILDIR = ""
    probes.probes_send()
    drain_all()
    probes.probes_collect()
    probe = Probe.objects.get()
    assert probe.state == Probe.State.SENT and probe.finished_at is not None and not probe.slo_missed


@pytest.mark.django_db
def test_a_suppressed_probe_address_is_a_failed_probe_and_nothing_is_sent(smtp_sink, settings, caplog):
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    suppression_add(tenant=tenant_get_default(), channel="email", address="probe@sink.test", reason="hard_bounce",
                    source="test")
    with caplog.at_level(logging.WARNING):
        probes.probes_tick()
    probe = Probe.objects.get()
    assert probe.state == Probe.State.SUPPRESSED and probe.error_code == "COMMS_PROBE_SUPPRESSED"
    assert probe.slo_missed and probe.message_id is None and not Message.objects.exists()
    drain_all()
    assert smtp_sink.by_comms_id() == {}
    assert "ops alert probe.slo_missed" in caplog.text


@pytest.mark.django_db
def test_a_missed_slo_alerts_once(sink_maildir, settings, caplog):
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    settings.COMMS_PROBE_SLO_SENT_SECONDS = -1.0  # nothing can meet it
    probes.probes_send()
    drain_all()
    with caplog.at_level(logging.WARNING):
        probes.probes_collect()
        probes.probes_collect()
    assert Probe.objects.get().slo_missed
    assert caplog.text.count("ops alert probe.slo_missed") == 1


@pytest.mark.django_db
def test_a_probe_is_pinned_to_its_provider(smtp_sink, settings):
    """Two email providers: one probe each, and each goes through its own (the broken one fails)."""
    ChannelProvider.objects.create(channel="email", name="relay-a", provider_class="delivery.providers.smtp.SmtpProvider",
                                   is_primary=True)
    ChannelProvider.objects.create(channel="email", name="relay-b", provider_class="delivery.providers.smtp.SmtpProvider",
                                   order=2, options={"host": "127.0.0.1", "port": 1})
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    sent = probes.probes_send()
    assert sorted(p.provider for p in sent) == ["relay-a", "relay-b"]
    drain_all()
    by_provider = {p.provider: Message.objects.get(pk=p.message_id) for p in Probe.objects.all()}
    assert by_provider["relay-a"].provider == "relay-a" and by_provider["relay-a"].status == Status.SENT
    assert by_provider["relay-b"].provider != "relay-a"  # never failed over to the other provider


@pytest.mark.django_db(transaction=True)
def test_sms_probe_delivered_through_twilio_status_callbacks(live_server, settings):
    settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "auth_token": ""}
    stand_in = TwilioStandIn(SID, TOKEN, callback_delay=0.02)
    row = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                          is_primary=True, options={"from_number": "+15005550006", "base_url": stand_in.url,
                                                    "status_callback": f"{live_server.url}/webhooks/twilio/status"})
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    try:
        settings.COMMS_PROBE_RECIPIENTS = {"sms": "+15005550010"}
        probes.probes_send()
        drain_all()
        stand_in.callbacks.wait()
        wait_for(lambda: WebhookEvent.objects.count() >= 3, timeout=10, message="3 status callbacks")
        for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
            webhook_process(webhook_id=pk)
        probes.probes_collect()
        probe = Probe.objects.get()
        assert probe.state == Probe.State.DELIVERED and probe.provider == "twilio"
        assert probe.delivered_seconds is not None and probe.delivered_seconds >= probe.sent_seconds
    finally:
        stand_in.close()


@pytest.mark.django_db
def test_probes_never_count_in_the_dashboard_event_figures(api, smtp_sink, settings):
    from django.db import connection

    def events() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(sum(n), 0) FROM admin_console_event_delta")
            return cursor.fetchone()[0]

    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    probes.probes_send()
    drain_all()
    assert Message.objects.get().status == Status.SENT and events() == 0
    assert api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "Hi",
                                         "body": "Hello"}, format="json").status_code == 202
    drain_all()
    assert events() > 0  # an ordinary send is counted
