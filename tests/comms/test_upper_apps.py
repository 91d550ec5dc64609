"""The router and the campaigns are apps of their own above the kernel (issue 15, move 3).

The move was state-only: tables keep their ``comms_*`` names, content types are relabelled so the
permissions held by groups follow the models, and Celery task names stay ``comms.tasks.*`` so tasks
already queued and the beat entry keep working.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from admin_console.roles import roles_ensure
from comms.campaigns.models import Campaign, CampaignBatch, Segment
from comms.router.models import (
    Digest, DigestItem, Escalation, Event, RoutingRule, RoutingRuleVersion, Schedule,
)

ROOT = Path(__file__).resolve().parents[2]
ROUTER = (RoutingRule, RoutingRuleVersion, Event, Digest, DigestItem, Escalation, Schedule)
CAMPAIGNS = (Campaign, CampaignBatch, Segment)


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at module level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _files(root: Path, *, skip: tuple[str, ...] = ()) -> list[Path]:
    return [f for f in root.rglob("*.py") if "migrations" not in f.parts
            and not any(f.is_relative_to(root / s) for s in skip)]


def test_the_kernel_does_not_import_the_router_or_the_campaigns():
    upward = [f"{f.relative_to(ROOT)} -> {m}" for f in _files(ROOT / "comms", skip=("router", "campaigns"))
              for m in _imports(f) if m.startswith(("comms.router", "comms.campaigns"))]
    assert upward == []


def test_the_campaigns_do_not_import_the_router():
    """One direction between the two: the router uses the campaigns' segments for event audiences."""
    back = [f"{f.relative_to(ROOT)} -> {m}" for f in _files(ROOT / "comms" / "campaigns")
            for m in _imports(f) if m.startswith("comms.router")]
    assert back == []


def test_moved_models_keep_their_tables():
    assert {m._meta.label: m._meta.db_table for m in ROUTER + CAMPAIGNS} == {
        **{f"router.{m.__name__}": f"comms_{m.__name__.lower()}" for m in ROUTER},
        **{f"campaigns.{m.__name__}": f"comms_{m.__name__.lower()}" for m in CAMPAIGNS},
    }
    assert not [m for m in apps.get_app_config("comms").get_models() if m in ROUTER + CAMPAIGNS]


def test_celery_task_names_are_unchanged():
    from celery.loaders.base import autodiscover_tasks

    from config.celery import app

    autodiscover_tasks([c.name for c in apps.get_app_configs()])  # what app.autodiscover_tasks() finds
    names = {"comms.tasks.router_tick", "comms.tasks.campaign_fanout", "comms.tasks.campaign_cleanup"}
    assert names <= set(app.tasks)
    assert settings.CELERY_BEAT_SCHEDULE["comms-router-tick"]["task"] in app.tasks


@pytest.mark.django_db
def test_roles_see_the_moved_models():
    roles_ensure()
    viewer = get_user_model().objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.groups.add(Group.objects.get(name="CommsViewer"))
    viewer = get_user_model().objects.get(pk=viewer.pk)
    assert viewer.has_perm("campaigns.view_campaign") and viewer.has_perm("router.view_event")
    assert viewer.has_perm("router.view_schedule") and viewer.has_perm("campaigns.view_segment")
    assert not viewer.has_perm("campaigns.change_campaign")


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_granted_permissions_and_rows(tenant):
    """Migrate back to before the move, grant and write there, migrate forward: same rows, same grants."""
    executor = MigrationExecutor(connection)
    executor.migrate([("comms", "0006_category_catalogue")])
    ContentType.objects.clear_cache()
    old = ContentType.objects.get(app_label="comms", model="campaign")
    permission = Permission.objects.get(content_type=old, codename="change_campaign")
    group = Group.objects.create(name="CampaignManagers")
    group.permissions.add(permission)
    user = get_user_model().objects.create_user("manager", "manager@example.com", "pw", is_staff=True)
    user.groups.add(group)
    with connection.cursor() as cursor:  # a row written while the table belonged to the comms app
        cursor.execute("INSERT INTO comms_segment (tenant_id, name, description, filter, created_at) "
                       "VALUES (%s, 'old', '', '{}', now())", [tenant.pk])

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    moved = ContentType.objects.get_for_model(Campaign)
    assert (moved.pk, moved.app_label) == (old.pk, "campaigns")
    left = ContentType.objects.filter(app_label="comms", model__in=["campaign", "event", "schedule"])
    assert not left.exists()
    assert list(group.permissions.all()) == [permission]
    assert get_user_model().objects.get(pk=user.pk).has_perm("campaigns.change_campaign")
    assert Segment.objects.get(tenant=tenant, name="old").filter == {}
