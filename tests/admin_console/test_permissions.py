"""Roles × actions in the admin and the console: who may do what, and an author never approves."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from comms.conversations.models import Conversation, ConversationMessage
from comms.models import AuditEntry
from admin_console.roles import roles_ensure
from delivery.models import Message
from delivery.services import SendSpec, message_enqueue
from templates_app import services
from templates_app.models import Template, TemplateVersion
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db
ROLES = ("CommsViewer", "CommsEditor", "CommsApprover", "superuser", "staff-without-role")


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.COMMS_ASSET_CHECK = False
    settings.COMMS_TEST_SEND_ALLOWLIST = ["qa@example.com", "@test.example.com"]


def make_user(role: str, name: str | None = None):
    roles_ensure()
    name = name or role.lower()
    User = get_user_model()
    if role == "superuser":
        return User.objects.create_superuser(name, f"{name}@example.com", "pw")
    user = User.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True)
    if role in ("CommsViewer", "CommsEditor", "CommsApprover"):
        user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def as_role(client):
    def login(role: str, name: str | None = None):
        user = make_user(role, name)
        client.force_login(user)
        return user
    return login


@pytest.fixture
def pending(tenant):
    """A template whose v1 an editor wrote and submitted."""
    author = make_user("CommsEditor", "author")
    data = order_template_data()
    data["experiment"] = {"name": "subject", "variants": [{"key": "A", "weight": 50}, {"key": "B", "weight": 50}]}
    template = services.template_create(tenant=tenant, actor=author, data=data, user=author)
    version = template.versions.get()
    services.version_submit(version=version, actor=author, user=author)
    return version


EXPECTED = {
    # action: roles allowed
    "view dashboard": {"CommsViewer", "CommsEditor", "CommsApprover", "superuser"},
    "view messages": {"CommsViewer", "CommsEditor", "CommsApprover", "superuser"},
    "view audit log": {"CommsViewer", "CommsEditor", "CommsApprover", "superuser"},
    "export audit CSV": {"CommsViewer", "CommsEditor", "CommsApprover", "superuser"},
    "create template": {"CommsEditor", "CommsApprover", "superuser"},
    "submit draft": {"CommsEditor", "CommsApprover", "superuser"},
    "approve": {"CommsApprover", "superuser"},
    "test send": {"CommsEditor", "CommsApprover", "superuser"},
    "change experiment split": {"CommsApprover", "superuser"},
    "cancel messages": {"superuser"},
    "edit audit entry": set(),
    "view conversations": {"CommsViewer", "CommsEditor", "CommsApprover", "superuser"},
    "reply in a conversation": {"CommsEditor", "CommsApprover", "superuser"},
}


def attempt(client, action: str, tenant, pending_version) -> bool:
    """Try `action` as the logged-in user; True when it took effect."""
    if action == "view dashboard":
        return client.get("/console/").status_code == 200
    if action == "view messages":
        return client.get("/admin/delivery/message/").status_code == 200
    if action == "view audit log":
        return client.get("/admin/comms/auditentry/").status_code == 200
    if action == "export audit CSV":
        response = client.get("/admin/comms/auditentry/export.csv")
        return response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    if action == "create template":
        client.post("/admin/templates_app/template/add/", {
            "tenant": str(tenant.pk), "template_key": "promo", "name": "Promo", "category": "marketing", "channels": "email",
            "default_locale": "en-US", "sms_segment_cap": 3, "sms_overflow": "refuse"})
        return Template.objects.filter(template_key="promo").exists()
    if action == "submit draft":
        draft = services.template_edit(template=pending_version.template, actor=None,
                                       data={"change_notes": "next"}, user=None)
        client.post(f"/admin/templates_app/templateversion/{draft.pk}/workflow/submit/")
        draft.refresh_from_db()
        return draft.status == TemplateVersion.Status.PENDING
    if action == "approve":
        client.post(f"/admin/templates_app/templateversion/{pending_version.pk}/workflow/approve/",
                    {"approve_notes": "ok"})
        pending_version.refresh_from_db()
        return pending_version.status == TemplateVersion.Status.APPROVED
    if action == "test send":
        client.post(f"/admin/templates_app/templateversion/{pending_version.pk}/test-send/",
                    {"test_address": "qa@example.com", "test_channel": "email"})
        return Message.objects.filter(metadata__cause_event="admin.test").exists()
    if action == "change experiment split":
        client.post(f"/admin/templates_app/templateversion/{pending_version.pk}/weights/",
                    {"weight_A": "90", "weight_B": "10", "weights_reason": "B underperforms"})
        pending_version.refresh_from_db()
        return pending_version.experiment["variants"][0]["weight"] == 90
    if action == "cancel messages":
        message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="x@example.com", subject="s",
                                                                  body="b", scheduled_for=None, priority=3))
        Message.objects.filter(pk=message.pk).update(status="scheduled")
        client.post("/admin/delivery/message/", {"action": "cancel_selected", "_selected_action": [str(message.pk)]})
        message.refresh_from_db()
        return message.status == "cancelled"
    if action == "edit audit entry":
        entry = AuditEntry.objects.order_by("-id").first()
        response = client.post(f"/admin/comms/auditentry/{entry.pk}/change/", {"reason": "rewritten"})
        entry.refresh_from_db()
        return response.status_code == 302 and entry.reason == "rewritten"
    if action == "view conversations":
        return client.get("/admin/conversations/conversation/").status_code == 200
    if action == "reply in a conversation":
        conversation = Conversation.objects.create(tenant=tenant, subject="Refund")
        client.post(f"/admin/conversations/conversation/{conversation.pk}/reply/", {"body": "Refund issued"})
        return ConversationMessage.objects.filter(conversation=conversation, source="staff").exists()
    raise AssertionError(action)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_role_action_matrix(as_role, client, tenant, pending, role, action):
    as_role(role)
    assert attempt(client, action, tenant, pending) == (role in EXPECTED[action])


def test_an_editor_cannot_approve_their_own_template_even_with_the_approver_role(client, tenant):
    author = make_user("CommsApprover", "author-approver")
    template = services.template_create(tenant=tenant, actor=author, data=order_template_data(), user=author)
    version = template.versions.get()
    services.version_submit(version=version, actor=author, user=author)
    client.force_login(author)
    response = client.post(f"/admin/templates_app/templateversion/{version.pk}/workflow/approve/",
                           {"approve_notes": "looks fine to me"}, follow=True)
    assert "An author cannot approve their own template" in response.content.decode()
    version.refresh_from_db()
    assert version.status == TemplateVersion.Status.PENDING
    assert not AuditEntry.objects.filter(action="template.approve").exists()


def test_test_send_refuses_addresses_off_the_allow_list(as_role, client, pending):
    as_role("CommsEditor")
    response = client.post(f"/admin/templates_app/templateversion/{pending.pk}/test-send/",
                           {"test_address": "customer@gmail.com", "test_channel": "email"}, follow=True)
    assert "not on the test-send allow-list" in response.content.decode()
    assert not Message.objects.exists()
    client.post(f"/admin/templates_app/templateversion/{pending.pk}/test-send/",
                {"test_address": "Dev@Test.Example.com", "test_channel": "email"})
    sent = Message.objects.get()
    assert sent.metadata["cause_event"] == "admin.test" and sent.metadata["version"] == 1
    assert sent.priority == 1 and "Ada" in sent.body_html
