"""Roles are widened by migration: a deployment whose roles were made before retention, quotas, preview
images and staged rollouts existed gets their view permissions from migration 0015."""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db

NEW = ["view_retentionpolicy", "view_retentionrun", "view_tenantquota", "view_templaterollout", "view_templatepreview"]


def test_migration_0015_gives_every_role_the_new_models():
    migration = importlib.import_module("admin_console.migrations.0015_roles_retention_rollouts")
    old = Permission.objects.exclude(codename__in=NEW).filter(codename__startswith="view_")
    for name in ("CommsViewer", "CommsEditor", "CommsApprover"):  # as an older deployment had them
        Group.objects.get_or_create(name=name)[0].permissions.set(old)
    assert not Group.objects.filter(permissions__codename__in=NEW).exists()

    # The migration runs on the historical models of its own state, as `migrate` gives it.
    state = MigrationExecutor(connection).loader.project_state(("admin_console", "0015_roles_retention_rollouts"))
    migration.roles(state.apps, None)

    for name in ("CommsViewer", "CommsEditor", "CommsApprover"):
        have = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert set(NEW) <= have, name


def test_migration_0017_gives_every_role_the_hourly_sms_spend():
    migration = importlib.import_module("admin_console.migrations.0017_roles_cost_hourly")
    old = Permission.objects.exclude(codename="view_costhourly").filter(codename__startswith="view_")
    for name in ("CommsViewer", "CommsEditor", "CommsApprover"):
        Group.objects.get_or_create(name=name)[0].permissions.set(old)
    state = MigrationExecutor(connection).loader.project_state(("admin_console", "0017_roles_cost_hourly"))
    migration.roles(state.apps, None)
    for name in ("CommsViewer", "CommsEditor", "CommsApprover"):
        assert Group.objects.get(name=name).permissions.filter(codename="view_costhourly").exists(), name
