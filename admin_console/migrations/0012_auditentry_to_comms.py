"""The audit log moves to the kernel (``comms.AuditEntry``): every app writes it, so it sits at the bottom.

State only: the table keeps its name (``admin_console_auditentry``; the model sets ``db_table``) and
its append-only trigger (0002), so no row is rewritten. The content type is relabelled in place, so the
``view_auditentry`` permission held by the roles (admin_console/roles.py) and admin log entries keep
pointing at the same model. comms 0008 adds the model back to Django's state, after this one.
"""

from django.db import migrations


def _relabel(apps, schema_editor, *, forward: bool) -> None:
    from django.contrib.contenttypes.models import ContentType as LiveContentType

    ContentType = apps.get_model("contenttypes", "ContentType")
    source, target = ("admin_console", "comms") if forward else ("comms", "admin_console")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label=source, model="auditentry").update(app_label=target)
    LiveContentType.objects.clear_cache()  # a cached (label, model) would name the old label


def relabel(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, forward=True)


def relabel_back(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ("admin_console", "0011_stats_update_without_join"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEntry")]),
        migrations.RunPython(relabel, relabel_back),
    ]
