"""Roles see conversations; editors (and approvers) answer and close them in the admin (roles.py)."""

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
        ("admin_console", "0013_stats_skip_probes"), ("conversations", "0003_channel_bridge"),
    ]
    operations = [migrations.RunPython(roles, migrations.RunPython.noop)]
