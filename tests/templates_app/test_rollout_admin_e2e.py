"""An approver starts, advances and watches a staged rollout in the admin (headless Chromium), and sees why
the guardrail rolled it back; screenshots at 1280 and 360 px."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from delivery.models import Message
from templates_app import services
from templates_app.models import Template, TemplateRollout
from templates_app.rollout_guard import rollouts_tick
from tests.browser import SCREENSHOTS, admin_login, admin_staff, browser_page
from tests.templates_app.fixtures import order_template_data
from tracking.models import MessageEvent

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _no_overflow(page) -> None:
    """Nothing wider than the viewport: the page does not scroll sideways."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_approver_rolls_out_in_steps_and_sees_the_guardrail_rollback(live_server, settings, tenant):
    settings.COMMS_ASSET_CHECK = False
    settings.COMMS_ROLLOUT_MIN_VOLUME = 4
    editor = admin_staff("edith", "CommsEditor")
    admin_staff("arthur", "CommsApprover")
    first = admin_staff("amy", "CommsApprover")
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data())
    services.version_submit(version=template.versions.get(), actor=editor, user=editor)
    services.version_approve(version=template.versions.get(), user=first)
    v2 = services.template_edit(template=template, actor=editor, user=editor, data={"change_notes": "new header"})
    services.version_submit(version=v2, actor=editor, user=editor)
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "arthur")
        page.goto(f"{base}/admin/templates_app/templateversion/{v2.pk}/change/")
        page.fill("input[name=rollout_percent]", "5")
        page.fill("input[name=rollout_schedule]", "25, 100")
        page.fill("input[name=rollout_step_hours]", "12")
        for width in (1280, 360):  # the approver's rollout fields beside Approve
            page.set_viewport_size({"width": width, "height": 900})
            page.locator("#workflow").screenshot(path=str(SCREENSHOTS / f"rollout-approve-{width}.png"))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click("button[name=approve_rollout]")
        assert "rollout started" in page.locator(".messagelist").inner_text()
        template = Template.objects.get(pk=template.pk)
        assert template.active_version.version == 1  # the others keep v1
        rollout = TemplateRollout.objects.get()
        assert (rollout.percent, rollout.schedule, rollout.step_seconds) == (5, [25, 100], 43200)

        page.goto(f"{base}/admin/templates_app/template/{template.pk}/change/")
        page.click(".comms-rollout a")
        assert "Running at 5 %" in page.locator("#rollout-panel h2").inner_text()
        page.click("button[name=advance]")  # the next scheduled step, by hand
        assert "25 %" in page.locator("#rollout-panel h2").inner_text()
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SCREENSHOTS / f"rollout-running-{width}.png"), full_page=True)
            _no_overflow(page)

        # v2's sends bounce hard: the beat's guardrail check rolls it back
        now = timezone.now()
        for i in range(4):
            m = Message.objects.create(tenant=tenant, channel="email", recipient_address=f"r{i}@example.com",
                                       status="bounced", template_version=v2, template_key=template.template_key,
                                       sent_at=now, provider="smtp", provider_ref=f"ref-{i}")
            MessageEvent.objects.create(tenant=tenant, message=m, event_type="bounced", bounce_type="hard",
                                        provider="ses", recipient_address=m.recipient_address)
        assert rollouts_tick()["rolled_back"] == 1
        page.reload()
        why = page.locator("#rollout-why").inner_text()
        assert "guardrail bounce" in why and "100.0 % of 4 sends" in why
        assert page.locator("#rollout-guardrails tr.breached").count() == 1
        assert page.locator("#rollout-actions").count() == 0  # finished: nothing left to press
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SCREENSHOTS / f"rollout-rolled-back-{width}.png"), full_page=True)
            _no_overflow(page)
        page.goto(f"{base}/admin/templates_app/template/{template.pk}/change/")
        assert "rolled back: bounce" in page.locator(".comms-rollout").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "rollout-template-360.png"), full_page=True)
