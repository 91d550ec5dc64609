"""The comms roles as Django groups. Created by migration 0003, widened by 0008 and 0013 (conversations);
`roles_ensure` repairs them."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

APPS = ("comms", "router", "campaigns", "delivery", "templates_app", "admin_console", "preferences", "tracking",
        "webhooks", "conversations")
TEMPLATE_EDIT = [f"{action}_{model}" for model in ("template", "templateversion", "templatelocale")
                 for action in ("add", "change", "view")]
# Support work in the conversations admin (reply as a staff participant, close) is a change of the conversation.
CONVERSATION_EDIT = [("conversations", "change_conversation")]
# Approvers approve templates and lift suppressions (re-permission needs documented consent *and* an approver).
APPROVE = [("templates_app", "approve_template"), ("preferences", "change_suppression")]


def role_permissions(permission_model) -> dict[str, list]:
    """The permission rows of each role (works with the real model and a migration's historical one)."""
    viewing = list(permission_model.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_"))
    editing = list(permission_model.objects.filter(content_type__app_label="templates_app",
                                                   codename__in=TEMPLATE_EDIT))
    editing += [p for app, code in CONVERSATION_EDIT
                for p in permission_model.objects.filter(content_type__app_label=app, codename=code)]
    approving = [p for app, code in APPROVE
                 for p in permission_model.objects.filter(content_type__app_label=app, codename=code)]
    return {"CommsViewer": viewing, "CommsEditor": viewing + editing, "CommsApprover": viewing + editing + approving}


def roles_ensure() -> dict[str, Group]:
    """CommsViewer (read everything), CommsEditor (+ edit template drafts, answer and close conversations),
    CommsApprover (+ approve, lift)."""
    groups = {}
    for name, perms in role_permissions(Permission).items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)
        groups[name] = group
    return groups
