"""Roles see the models added since 0014 (retention policies and runs, tenant quotas, preview images,
staged rollouts): a role's view permissions are fixed when its migration runs, so each new model
needs the roles widened again (roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles(apps, schema_editor):
    from admin_console.roles import role_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for name, perms in role_permissions(apps.get_model("auth", "Permission")).items():
        Group.objects.get_or_create(name=name)[0].permissions.set(perms)


class Migration(migrations.Migration):
    dependencies = [
        ("admin_console", "0014_roles_conversations"), ("comms", "0012_tenant_required_locales"),
        ("templates_app", "0008_template_rollout"), ("tracking", "0003_anomaly_and_engagement"),
        ("delivery", "0018_cost_tracking"),
    ]
    operations = [migrations.RunPython(roles, migrations.RunPython.noop)]
