"""Voice calls end to end: the real Twilio SDK → the loopback Calls API stand-in → its signed status
callbacks and Gather action → our webhook intake (live server) → message status and events."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from xml.etree import ElementTree

import pytest

from comms.devserver.standins.twilio import TwilioStandIn
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from tests.conftest import wait_for
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

SID, TOKEN, CALLER = "AC" + "2" * 32, "voice-secret-token", "+15005550006"
TO = "+14155550123"
NOON_LA = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(12),
                              tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles"))


@pytest.fixture
def voice(live_server, settings):
    settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "auth_token": ""}  # only the provider row's token signs
    stand_in = TwilioStandIn(SID, TOKEN, callback_delay=0.02)
    row = ChannelProvider(channel="voice", name="twilio_voice",
                          provider_class="delivery.providers.twilio_voice.TwilioVoiceProvider", is_primary=True,
                          options={"from_number": CALLER, "base_url": stand_in.url, "callback_base": live_server.url})
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    yield stand_in
    stand_in.close()


def _call(api, **extra) -> str:
    payload = {"channel": "voice", "to": TO, "body": "Your appointment is tomorrow at 9.", **extra}
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _settle(stand_in: TwilioStandIn, rows: int) -> None:
    """Wait for the stand-in's callbacks, then process the stored rows as the Celery task would."""
    stand_in.callbacks.wait()
    wait_for(lambda: WebhookEvent.objects.count() >= rows, timeout=10, message=f"{rows} webhook rows")
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)


def test_a_call_is_placed_through_the_sdk_and_its_callbacks_deliver_it(api, voice):
    message_id = _call(api, locale="fr-FR")
    assert drain_all().sent == 1
    [call] = voice.calls
    assert (call["To"], call["From"]) == (TO, CALLER)
    assert call["MachineDetection"] == "DetectMessageEnd"
    assert call["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    say = ElementTree.fromstring(call["Twiml"]).find("Say")
    assert (say.text, say.get("language"), say.get("voice")) == (
        "Your appointment is tomorrow at 9.", "fr-FR", "Polly.Lea-Neural")
    message = Message.objects.get(id=message_id)
    assert message.status == Status.SENT and message.provider_ref == call["sid"]
    _settle(voice, rows=4)  # initiated, ringing, in-progress, completed: all signed and accepted
    assert {c.status for c in voice.callbacks.sent} == {200}
    assert set(WebhookEvent.objects.values_list("signature_valid", flat=True)) == {True}
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    event = MessageEvent.objects.get(message_id=message.id)
    assert (event.event_type, event.data["answered_by"]) == ("delivered", "human")


def test_the_gathered_digit_is_recorded_and_answered_in_twiml(api, voice):
    voice.call_outcomes[TO] = {"digits": "1"}
    message_id = _call(api, locale="es-MX", metadata={"voice": {"gather": {"prompt": "Pulse 1 para confirmar.",
                                                                            "digits": 1}}})
    drain_all()
    gather = ElementTree.fromstring(voice.calls[0]["Twiml"]).find("Gather")
    assert gather.get("numDigits") == "1" and gather.get("action").endswith("/webhooks/twilio/voice/gather?lang=es-MX")
    assert [s.text for s in gather.findall("Say")] == ["Your appointment is tomorrow at 9.", "Pulse 1 para confirmar."]
    _settle(voice, rows=5)
    reply = next(c for c in voice.callbacks.sent if "Digits" in c.fields)
    assert reply.status == 200 and "<Say language=\"es-MX\">Gracias. Adiós.</Say><Hangup />" in reply.reply
    kinds = dict(MessageEvent.objects.filter(message_id=message_id).values_list("event_type", "data"))
    assert kinds["gathered"] == {"digits": "1"}
    assert Message.objects.get(id=message_id).status == Status.DELIVERED


def test_a_voicemail_drop_is_delivered_and_marked(api, voice):
    voice.call_outcomes[TO] = {"answered_by": "machine_end_beep"}
    message_id = _call(api, metadata={"voice": {"gather": "Press 1 to confirm."}})
    drain_all()
    _settle(voice, rows=4)  # no Gather action: nobody pressed a key on a voicemail
    assert not any("Digits" in c.fields for c in voice.callbacks.sent)
    event = MessageEvent.objects.get(message_id=message_id)
    assert (event.event_type, event.data["voicemail"], event.reason) == (
        "delivered", True, "voicemail left after the greeting")
    assert Message.objects.get(id=message_id).status == Status.DELIVERED


@pytest.mark.parametrize("outcome, reason", [("busy", "the line was busy"), ("no-answer", "nobody answered")])
def test_busy_and_no_answer_fail_the_message_as_transient(api, voice, outcome, reason):
    voice.call_outcomes[TO] = {"status": outcome}
    message_id = _call(api)
    drain_all()
    _settle(voice, rows=3)  # initiated, ringing, then the final status
    message = Message.objects.get(id=message_id)
    assert message.status == Status.FAILED
    event = MessageEvent.objects.get(message_id=message_id)
    assert (event.event_type, event.reason, event.data["transient"]) == ("failed", reason, True)
    log = message.logs.order_by("pk").last()
    assert (log.event, log.status_code) == ("failed", outcome)


def test_a_callback_signed_with_another_token_is_refused(voice, live_server):
    voice.auth_token = "forged"  # the stand-in now signs with a token no provider of ours holds
    record = voice.callbacks.signed_post(f"{live_server.url}/webhooks/twilio/voice",
                                         {"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "To": TO})
    assert record.status == 401
    row = WebhookEvent.objects.get()
    assert (row.signature_valid, row.state) == (False, "rejected")


def test_callbacks_only_go_to_loopback(voice):
    record = voice.callbacks.signed_post("http://192.0.2.10/webhooks/twilio/voice", {"CallSid": "CA1"})
    assert (record.status, record.error) == (None, "refused: not a loopback URL")


def test_template_variables_cannot_inject_twiml(api, voice, tenant):
    from tests.comms.router_fixtures import _staff
    from templates_app import services as templates

    editor, approver = _staff("voice-editor"), _staff("voice-approver", "templates_app.approve_template")
    template = templates.template_create(tenant=tenant, actor=editor, user=editor, data={
        "template_key": "reminder", "name": "Reminder", "channels": ["voice"], "default_locale": "en-US",
        "variables_schema": {"type": "object", "properties": {"name": {"type": "string"}, "when": {"type": "string"}}},
        "sample_variables": {"name": "Ada", "when": "at 9"},
        "locales": [{"locale": "en-US", "voice_text": "Hello {{name}}, see you {{when}}."}]})
    version = template.versions.get()
    templates.version_submit(version=version, actor=editor, user=editor)
    templates.version_approve(version=version, user=approver)
    hostile = '</Say><Play>http://evil.example/x.mp3</Play><Say>'
    response = api.post("/api/v1/messages", {"channel": "voice", "to": TO, "template": "reminder",
                                             "variables": {"name": hostile, "when": "at 9 & <soon>"}}, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    twiml = voice.calls[0]["Twiml"]
    assert "<Play>" not in twiml and "&lt;/Say&gt;&lt;Play&gt;" in twiml
    root = ElementTree.fromstring(twiml)
    assert [child.tag for child in root] == ["Say"] and root.find("Play") is None
    assert root.find("Say").text == f"Hello {hostile}, see you at 9 & <soon>."


def test_voice_shows_in_metrics_stats_console_and_provider_admin(api, voice, client):
    """Item 7: the voice channel and its provider appear wherever channels and providers are counted."""
    import re

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    _call(api)
    drain_all()
    _settle(voice, rows=4)
    metrics = client.get("/metrics").content.decode()
    for event in ("sent", "delivered"):
        assert f'comms_events{{channel="voice",event="{event}",provider="twilio_voice",window="5m"}} 1.0' in metrics
    assert 'comms_quality_ratio{channel="voice",metric="delivered"} 1.0' in metrics
    assert 'comms_provider_circuit_open{channel="voice",provider="twilio_voice"} 0.0' in metrics
    assert 'comms_queue_messages{channel="voice",priority="P2",status="delivered"} 1.0' in metrics
    stats = api.get("/api/v1/stats/channels").json()
    voice_quality = next(q for q in stats["quality"]["channel"] if q["channel"] == "voice")
    assert voice_quality["counts"]["delivered"] == 1
    from admin_console.roles import roles_ensure

    roles_ensure()  # a transactional test's earlier truncation removed the migration-made groups
    user = get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="CommsViewer"))
    client.force_login(user)
    console = client.get("/console/").content.decode()
    provider_table = re.search(r'<table id="quality-provider">(.*?)</table>', console, re.S).group(1)
    assert "twilio_voice" in provider_table
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    providers = client.get("/admin/delivery/channelprovider/?channel__exact=voice").content.decode()
    assert "twilio_voice" in providers
    form = client.get("/admin/delivery/channelprovider/add/").content.decode()
    assert '<option value="voice">Voice</option>' in form
