"""Staged rollouts (issue 20): sticky split, typed errors, scheduled steps, the API, and the automatic
rollback driven by real bounce webhooks through the SES intake."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.audit import AuditEntry
from comms.devserver.standins.http_receiver import Receiver
from delivery.models import Message
from delivery.services import drain_all
from templates_app import rollout as service
from templates_app import services
from templates_app.models import TemplateRollout, TemplateVersion
from templates_app.rollout_guard import rollout_figures, rollouts_tick
from tests.templates_app.fixtures import SCHEMA, variables
from tests.webhooks.signers import SIGNERS
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(tenant, make_live, editor, approver):
    """v1 live for everyone; v2 approved but not live (approved with a rollout, which we start per test)."""
    template = make_live(tenant)
    draft = services.template_edit(template=template, actor=editor, user=editor, data={"locales": [
        {"locale": "en-US", "subject": "v2: order {{order.id}}", "body_html": "<p>New look {{user.first_name}}</p>",
         "sms_text": "v2 {{order.id}}", "push_title": "v2", "push_body": "v2 {{order.id}}",
         "in_app_content": {"title": "v2", "body": "v2 {{order.id}}"}}]})
    services.version_submit(version=draft, actor=editor, user=editor)
    services.version_approve(version=draft, user=approver, activate=False)
    template.refresh_from_db()
    draft.refresh_from_db()
    return template, template.active_version, draft


def _start(template, version, actor, **kw):
    kw.setdefault("percent", 5)
    return service.rollout_start(template=template, version=version, actor=actor, **kw)


def test_split_is_sticky_as_the_percentage_rises(two_versions, approver):
    template, v1, v2 = two_versions
    rollout = _start(template, v2, approver, percent=5, schedule=[25, 100])
    keys = [f"user-{i}" for i in range(600)]

    def new_set():
        return {k for k in keys if service.rollout_pick(version=v1, recipient_key=k).pk == v2.pk}

    at5 = new_set()
    assert 10 < len(at5) < 55  # ~5 % of 600
    assert new_set() == at5  # the same recipient gets the same version on every send
    service.rollout_advance(rollout=rollout, actor=approver)
    at25 = new_set()
    assert at5 < at25 and 110 < len(at25) < 190  # everyone who had v2 keeps it; more join
    service.rollout_rollback(rollout=rollout, actor=approver, reason="changed my mind")
    assert new_set() == set()
    template.refresh_from_db()
    assert template.active_version_id == v1.pk


def test_reaching_100_makes_the_version_active(two_versions, approver):
    template, v1, v2 = two_versions
    rollout = _start(template, v2, approver, percent=50)
    rollout = service.rollout_advance(rollout=rollout, actor=approver)  # no schedule left: 100 %
    template.refresh_from_db()
    assert rollout.state == "completed" and template.active_version_id == v2.pk
    assert AuditEntry.objects.filter(action="template.rollout_complete").count() == 1


def test_percent_outside_0_100_is_refused(two_versions, approver):
    template, _, v2 = two_versions
    for percent in (-1, 100.5, "50", None, True, float("nan"), float("inf")):
        with pytest.raises(service.RolloutPercentInvalid):
            _start(template, v2, approver, percent=percent)
    with pytest.raises(service.RolloutPercentInvalid):
        _start(template, v2, approver, percent=5, schedule=[25, 101])
    assert not TemplateRollout.objects.exists()


def test_typed_errors(two_versions, approver, editor):
    template, v1, v2 = two_versions
    draft = services.template_edit(template=template, actor=editor, user=editor, data={"change_notes": "v3"})
    with pytest.raises(service.RolloutNotApproved):  # a draft
        _start(template, draft, approver)
    with pytest.raises(service.RolloutNotApproved):  # the live version itself
        _start(template, v1, approver)
    rollout = _start(template, v2, approver)
    with pytest.raises(service.RolloutInProgress):
        _start(template, v2, approver)
    with pytest.raises(service.RolloutPercentInvalid):  # advancing goes up
        service.rollout_advance(rollout=rollout, actor=approver, percent=2)
    TemplateVersion.objects.filter(pk=v1.pk).update(status=TemplateVersion.Status.ARCHIVED)
    with pytest.raises(service.RolloutPreviousArchived):
        service.rollout_rollback(rollout=rollout, actor=approver)
    TemplateVersion.objects.filter(pk=v1.pk).update(status=TemplateVersion.Status.APPROVED)
    service.rollout_rollback(rollout=rollout, actor=approver)
    for call in (service.rollout_advance, service.rollout_rollback, service.rollout_pause):
        with pytest.raises(service.RolloutFinished):
            call(rollout=rollout, actor=approver)


def test_approving_with_a_rollout_does_not_go_live_for_everyone(tenant, make_live, editor, approver):
    template = make_live(tenant)
    draft = services.template_edit(template=template, actor=editor, user=editor, data={"change_notes": "v2"})
    services.version_submit(version=draft, actor=editor, user=editor)
    with pytest.raises(service.RolloutPercentInvalid):  # refused: the approval is not kept either
        service.version_approve_and_roll_out(version=draft, user=approver, percent=500)
    draft.refresh_from_db()
    assert draft.status == "pending_review"
    service.version_approve_and_roll_out(version=draft, user=approver, percent=5, schedule=[25, 100],
                                         step_seconds=3600)
    template.refresh_from_db()
    rollout = TemplateRollout.objects.get()
    assert template.active_version.version == 1 and rollout.version_id == draft.pk and rollout.percent == 5


def test_schedule_steps_by_the_beat_and_pause_holds_it(two_versions, approver):
    template, _, v2 = two_versions
    now = timezone.now()
    rollout = _start(template, v2, approver, percent=5, schedule=[25, 100], step_seconds=3600, now=now)
    assert rollouts_tick(now=now + timedelta(minutes=30))["advanced"] == 0
    rollouts_tick(now=now + timedelta(hours=1, seconds=1))
    rollout.refresh_from_db()
    assert rollout.percent == 25 and rollout.schedule == [100]
    service.rollout_pause(rollout=rollout, actor=approver)
    rollouts_tick(now=now + timedelta(hours=5))
    rollout.refresh_from_db()
    assert rollout.percent == 25 and rollout.state == "paused"
    service.rollout_pause(rollout=rollout, actor=approver, resume=True, now=now + timedelta(hours=5))
    rollouts_tick(now=now + timedelta(hours=6, seconds=1))
    rollout.refresh_from_db()
    template.refresh_from_db()
    assert rollout.state == "completed" and template.active_version_id == v2.pk


def test_render_errors_of_the_new_version_roll_it_back(two_versions, approver, api, settings, editor):
    """A new version that needs a variable the callers do not send: every v2 send is refused."""
    template, v1, _ = two_versions
    draft = services.template_edit(template=template, actor=editor, user=editor, data={
        "variables_schema": {**SCHEMA, "required": [*SCHEMA["required"], "coupon"],
                             "properties": {**SCHEMA["properties"], "coupon": {"type": "string"}}},
        "sample_variables": variables(coupon="X"), "locales": [{"locale": "en-US", "subject": "{{coupon}}",
                                                          "body_html": "<p>{{coupon}}</p>", "sms_text": "{{coupon}}",
                                                          "push_title": "c", "push_body": "{{coupon}}",
                                                          "in_app_content": {"title": "c", "body": "{{coupon}}"}}]})
    services.version_submit(version=draft, actor=editor, user=editor)
    services.version_approve(version=draft, user=approver, activate=False)
    TemplateRollout.objects.all().delete()
    rollout = _start(template, draft, approver, percent=50, min_volume=5)
    refused = 0
    for i in range(30):
        r = api.post("/api/v1/messages", {"channel": "email", "to": f"r{i}@example.com", "template": template.template_key,
                                          "variables": variables()}, format="json")
        refused += r.status_code == 422
    assert 5 <= refused <= 25
    rollouts_tick()
    rollout.refresh_from_db()
    assert rollout.state == "rolled_back" and rollout.rollback_reason["metric"] == "render_error"
    assert rollout.rollback_reason["new_rate"] == 100.0 and rollout.rollback_reason["old_rate"] == 0.0


def _send(api, template_key: str, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        r = api.post("/api/v1/messages", {"channel": "email", "to": f"reader{i}@example.com",
                                          "template": template_key, "variables": variables()}, format="json")
        assert r.status_code == 202, r.content
        ids.append(r.json()["id"])
    return ids


def test_staged_rollout_from_5_percent_to_automatic_rollback_by_bounce_webhooks(
        two_versions, approver, api, admin_api, client, settings, smtp_sink):
    """Done-when: 5 % → 25 % (beat) → hard bounces for v2 sends arrive through the real SES intake →
    the beat rolls back, alerts through COMMS_OPS_ALERT, audits, and the API shows why."""
    template, v1, v2 = two_versions
    settings.COMMS_ROLLOUT_MIN_VOLUME = 5
    receiver = Receiver()
    settings.COMMS_ALERT_WEBHOOK_URL = receiver.url + "/alerts"
    ses = SIGNERS["ses"](settings)
    try:
        start = admin_api.post(f"/api/v1/templates/{template.template_key}/rollouts",
                               {"version": v2.version, "percent": 5, "schedule": [25, 100], "step_seconds": 3600},
                               format="json")
        assert start.status_code == 201, start.content
        assert start.json()["percent"] == 5 and start.json()["previous_version"] == 1
        _send(api, template.template_key, 10)
        drain_all()
        rollouts_tick(now=timezone.now() + timedelta(hours=1, seconds=5))  # the scheduled step
        state = admin_api.get(f"/api/v1/templates/{template.template_key}/rollouts").json()
        assert state["percent"] == 25 and state["state"] == "running"
        # Recipients for the next sends, 8 that the split gives v2 and 16 that keep v1 (predicted first)
        predicted: dict[str, int] = {}
        i = 10
        while sum(v == v2.pk for v in predicted.values()) < 8 or sum(v == v1.pk for v in predicted.values()) < 16:
            address = f"reader{i}@example.com"
            chosen = service.rollout_pick(version=v1, recipient_key=address).pk
            if sum(v == chosen for v in predicted.values()) < (8 if chosen == v2.pk else 16):
                predicted[address] = chosen
            i += 1
        for address in predicted:
            r = api.post("/api/v1/messages", {"channel": "email", "to": address, "template": template.template_key,
                                              "variables": variables()}, format="json")
            assert r.status_code == 202, r.content
        drain_all()
        for address, version_id in predicted.items():
            assert Message.objects.get(recipient_address=address).template_version_id == version_id
        new = list(Message.objects.filter(template_version=v2, status="sent"))
        old = list(Message.objects.filter(template_version=v1, status="sent"))
        assert len(new) >= 8 and len(old) >= 16
        assert all(m.subject.startswith("v2:") for m in new)  # each send says which version it used
        for m in new[:3]:  # hard bounces for v2 sends, through the real intake (signature, store, process)
            ses.sign(ses.envelope(ses.bounce_message(ref=m.provider_ref, message_id=str(m.id),
                                                     address=m.recipient_address))).send(client)
        webhooks_process_pending()
        rollouts_tick()
        state = admin_api.get(f"/api/v1/templates/{template.template_key}/rollouts").json()
        assert state["state"] == "rolled_back" and state["percent"] == 0
        why = state["rollback_reason"]
        assert why["metric"] == "bounce" and why["old_rate"] == 0.0
        assert why["new_volume"] == len(new) and why["old_volume"] == len(old)
        assert why["new_rate"] == pytest.approx(300 / len(new), abs=0.01)
        alert = json.loads(receiver.requests[0]["body"])
        assert alert["type"] == "template.rollout_rolled_back" and alert["metric"] == "bounce"
        assert AuditEntry.objects.filter(action="template.rollout_rollback", actor_label="system").count() == 1
        before = Message.objects.filter(template_version=v2).count()
        _send(api, template.template_key, 5, start=1000)  # everyone is back on v1
        assert Message.objects.filter(template_version=v2).count() == before
        again = admin_api.post(f"/api/v1/templates/{template.template_key}/rollouts/advance", {}, format="json")
        assert again.status_code == 409 and again.json()["code"] == "COMMS_ROLLOUT_FINISHED"
    finally:
        receiver.close()
        ses.close()


def test_api_errors_are_typed_json(two_versions, admin_api, api):
    template, _, v2 = two_versions
    url = f"/api/v1/templates/{template.template_key}/rollouts"
    assert admin_api.get(url).json()["code"] == "COMMS_ROLLOUT_NOT_FOUND"
    bad = admin_api.post(url, {"version": v2.version, "percent": 150}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_ROLLOUT_PERCENT_INVALID"
    live = admin_api.post(url, {"version": 1, "percent": 5}, format="json")
    assert live.status_code == 409 and live.json()["code"] == "COMMS_ROLLOUT_NOT_APPROVED"
    missing = admin_api.post(url, {"version": 99, "percent": 5}, format="json")
    assert missing.status_code == 404
    assert admin_api.post(url, {"version": v2.version, "percent": 5}, format="json").status_code == 201
    twice = admin_api.post(url, {"version": v2.version, "percent": 5}, format="json")
    assert twice.status_code == 409 and twice.json()["code"] == "COMMS_ROLLOUT_IN_PROGRESS"
    assert api.post(url + "/advance", {}, format="json").status_code == 403  # needs the admin scope
    paused = admin_api.post(url + "/pause", {}, format="json").json()
    assert paused["state"] == "paused"
    assert admin_api.post(url + "/advance", {"percent": 30}, format="json").json()["percent"] == 30
    back = admin_api.post(url + "/rollback", {"reason": "copy error"}, format="json").json()
    assert back["state"] == "rolled_back" and back["rollback_reason"]["reason"] == "copy error"


def test_figures_wait_for_the_minimum_volume(two_versions, approver):
    template, _, v2 = two_versions
    rollout = _start(template, v2, approver, min_volume=1000)
    figures = rollout_figures(rollout)
    assert figures["judged"] is False and not any(m["breached"] for m in figures["metrics"].values())


def _sent(tenant, version, n: int, *, events: str = "", bad: int = 0) -> None:
    """n sent messages of a version; the first ``bad`` get an event (tracking's rows, as webhooks write them)."""
    from tracking.models import MessageEvent

    now = timezone.now()
    for i in range(n):
        m = Message.objects.create(tenant=tenant, channel="email", recipient_address=f"v{version.pk}-{i}@example.com",
                                   status="sent", template_version=version, sent_at=now, provider="smtp")
        if i < bad:
            MessageEvent.objects.create(tenant=tenant, message=m, event_type=events, provider="sendgrid",
                                        bounce_type="hard" if events == "bounced" else "")


def test_relative_guardrail_compares_with_the_old_version(two_versions, approver, tenant):
    """Unsubscribes at 1.5 % stay under the 2 % ceiling but are 3 × the old version's 0.5 %: rolled back."""
    template, v1, v2 = two_versions
    rollout = _start(template, v2, approver, percent=50, min_volume=100)
    _sent(tenant, v1, 200, events="unsubscribed", bad=1)
    _sent(tenant, v2, 200, events="unsubscribed", bad=3)
    figures = rollout_figures(rollout)["metrics"]["unsubscribe"]
    assert (figures["new_rate"], figures["old_rate"], figures["new_volume"]) == (1.5, 0.5, 200)
    assert figures["breached"] and "× the old version" in figures["why"]
    rollouts_tick()
    rollout.refresh_from_db()
    assert rollout.state == "rolled_back" and rollout.rollback_reason["metric"] == "unsubscribe"


def test_a_complaint_rate_under_its_rules_keeps_the_rollout_running(two_versions, approver, tenant):
    template, v1, v2 = two_versions
    rollout = _start(template, v2, approver, percent=50, min_volume=100,
                     guardrails={"complaint": {"min_delta_pct": 0.2}})  # a per-rollout override
    _sent(tenant, v1, 400, events="complained", bad=0)
    _sent(tenant, v2, 1000, events="complained", bad=1)  # 0.1 %: under 0.3 %, and only 0.1 points above 0
    rollouts_tick()
    rollout.refresh_from_db()
    assert rollout.state == "running"
    status = rollout.guardrail_status["metrics"]["complaint"]
    assert status["new_rate"] == 0.1 and not status["breached"]
    assert status["rule"] == {"max_pct": 0.3, "max_ratio": 2.0, "min_delta_pct": 0.2}
