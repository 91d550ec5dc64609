"""Support staff in the admin: the conversation detail (participants, messages, the edit/delete audit
trail), a reply as staff that the participant sees live, and closing."""

from __future__ import annotations

import pytest

from comms.conversations.models import Conversation, ConversationMessage, Participant
from comms.conversations.services import (
    ParticipantSpec, conversation_create, message_delete, message_edit, message_post,
)
from comms.models import AuditEntry, Recipient
from tests.browser import browser_page

pytestmark = pytest.mark.django_db(transaction=True)


def _shot(page, name: str) -> None:
    from pathlib import Path
    path = Path("/tmp/shots-i17-conv")
    path.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path / name), full_page=True)


def test_support_reads_replies_and_closes(live_server, tenant, django_user_model):
    django_user_model.objects.create_superuser("support", "s@example.com", "support-secret-pw")
    ada = Recipient.objects.create(tenant=tenant, external_id="ada")
    conversation = conversation_create(tenant=tenant, kind="support", subject="Refund for order 77",
                                       participants=[ParticipantSpec(recipient=ada, display_name="Ada")])
    sender = Participant.objects.get(conversation=conversation)
    first, _ = message_post(conversation=conversation, sender=sender, body="I want a refund")
    message_edit(message=first, editor=sender, body="I want a refund please")
    oops, _ = message_post(conversation=conversation, sender=sender, body="my card is 4111 1111")
    message_delete(message=oops, editor=sender)

    for width in (1280, 360):
        with browser_page() as page:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/admin/login/")
            page.fill("#id_username", "support")
            page.fill("#id_password", "support-secret-pw")
            page.click("input[type=submit]")
            page.goto(f"{live_server.url}/admin/conversations/conversation/")
            page.click("text=Refund for order 77")
            page.wait_for_selector("#revisions")
            trail = page.inner_text("#revisions")
            assert "I want a refund" in trail and "edit" in trail and "delete" in trail and "4111" in trail
            assert "[deleted]" in page.inner_text("body")
            _shot(page, f"admin-detail-{width}.png")
            if width == 360:
                break
            page.fill("#id_body", "Refund issued, **3-5 days**.")
            page.click("#reply-submit")
            page.wait_for_selector(".messagelist >> text=Reply #3 sent.")
            assert "Refund issued" in page.inner_text("body")
            _shot(page, f"admin-replied-{width}.png")
            page.click("#close-submit")
            page.wait_for_selector(".messagelist >> text=Conversation closed.")
            assert page.is_hidden("#reply-form")
    reply = ConversationMessage.objects.get(conversation=conversation, index=3)
    assert reply.source == "staff" and reply.sender.role == "agent" and reply.sender.staff_user.username == "support"
    assert reply.body_html == "<p>Refund issued, <strong>3-5 days</strong>.</p>"
    assert Conversation.objects.get(pk=conversation.pk).state == "closed"
    actions = set(AuditEntry.objects.filter(actor_label="support").values_list("action", flat=True))
    assert {"conversation.staff_reply", "conversation.close"} <= actions


def test_reply_and_close_need_post_and_permission(client, tenant, django_user_model):
    ada = Recipient.objects.create(tenant=tenant, external_id="ada")
    conversation = conversation_create(tenant=tenant, participants=[ParticipantSpec(recipient=ada)])
    viewer = django_user_model.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    client.force_login(viewer)
    url = f"/admin/conversations/conversation/{conversation.pk}/reply/"
    assert client.post(url, {"body": "hi"}).status_code == 403
    assert not ConversationMessage.objects.exists()
