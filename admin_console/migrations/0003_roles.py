"""Roles as groups: CommsEditor, CommsApprover, CommsViewer (issue 7 grows their reach)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("comms", "delivery", "templates_app", "admin_console")
EDIT = [f"{action}_{model}" for model in ("template", "templateversion", "templatelocale")
        for action in ("add", "change", "view")]


def roles(apps, schema_editor):
    for app_config in apps.get_app_configs():  # permissions normally appear after migrate; we need them now
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    viewing = Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    editing = Permission.objects.filter(content_type__app_label="templates_app", codename__in=EDIT)
    approving = Permission.objects.filter(content_type__app_label="templates_app", codename="approve_template")
    Group.objects.get_or_create(name="CommsViewer")[0].permissions.set(viewing)
    Group.objects.get_or_create(name="CommsEditor")[0].permissions.set([*viewing, *editing])
    Group.objects.get_or_create(name="CommsApprover")[0].permissions.set([*viewing, *editing, *approving])


class Migration(migrations.Migration):
    dependencies = [
        ("admin_console", "0002_audit_append_only"), ("templates_app", "0001_initial"),
        ("delivery", "0003_queue_tuning"), ("comms", "0002_default_tenant"),
        ("auth", "0012_alter_user_first_name_max_length"), ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(roles, migrations.RunPython.noop)]
