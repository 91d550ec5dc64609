"""The comms roles as Django groups. Created by migration 0003; `roles_ensure` repairs them."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

APPS = ("comms", "delivery", "templates_app", "admin_console")
TEMPLATE_EDIT = [f"{action}_{model}" for model in ("template", "templateversion", "templatelocale")
                 for action in ("add", "change", "view")]


def roles_ensure() -> dict[str, Group]:
    """CommsViewer (read everything), CommsEditor (+ edit template drafts), CommsApprover (+ approve)."""
    viewing = list(Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_"))
    editing = list(Permission.objects.filter(content_type__app_label="templates_app", codename__in=TEMPLATE_EDIT))
    approving = list(Permission.objects.filter(content_type__app_label="templates_app", codename="approve_template"))
    groups = {}
    for name, perms in (("CommsViewer", viewing), ("CommsEditor", viewing + editing),
                        ("CommsApprover", viewing + editing + approving)):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)
        groups[name] = group
    return groups
