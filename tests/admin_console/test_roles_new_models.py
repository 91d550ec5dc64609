"""Roles are widened by migration: models added after a role's last migration must still be visible to it."""

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["CommsViewer", "CommsEditor", "CommsApprover"])
@pytest.mark.parametrize("codename", ["view_retentionpolicy", "view_retentionrun", "view_tenantquota",
                                      "view_templaterollout", "view_templatepreview"])
def test_every_role_sees_the_models_of_issues_20_and_21(role, codename):
    assert Group.objects.get(name=role).permissions.filter(codename=codename).exists()
