"""The router's and the campaigns' models move to their own apps (``router``, ``campaigns``).

State only: the tables keep their names (``comms_event``, ``comms_campaign``, …; the models set
``db_table``), so no row is rewritten and no index or constraint is rebuilt. Their content types
are relabelled in place, so the permission rows (and the groups that hold them, admin_console/roles.py)
and admin log entries keep pointing at the same models. The new apps' 0001 migrations add the
models back to Django's state, after this one.
"""

from django.db import migrations

MOVED = {
    "router": ["routingrule", "routingruleversion", "event", "digest", "digestitem", "escalation",
               "schedule"],
    "campaigns": ["campaign", "campaignbatch", "segment"],
}


def _relabel(apps, schema_editor, *, forward: bool) -> None:
    from django.contrib.contenttypes.models import ContentType as LiveContentType

    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for label, models in MOVED.items():
        source, target = ("comms", label) if forward else (label, "comms")
        ContentType.objects.using(db).filter(app_label=source, model__in=models).update(app_label=target)
    LiveContentType.objects.clear_cache()  # a cached (label, model) would name the old label


def relabel(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, forward=True)


def relabel_back(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ("comms", "0006_category_catalogue"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(
                model_name='campaignbatch',
                name='campaign',
            ),
            migrations.RemoveField(
                model_name='digest',
                name='recipient',
            ),
            migrations.RemoveField(
                model_name='digest',
                name='tenant',
            ),
            migrations.RemoveField(
                model_name='digestitem',
                name='digest',
            ),
            migrations.RemoveField(
                model_name='digestitem',
                name='event',
            ),
            migrations.RemoveField(
                model_name='escalation',
                name='event',
            ),
            migrations.RemoveField(
                model_name='escalation',
                name='recipient',
            ),
            migrations.RemoveField(
                model_name='escalation',
                name='tenant',
            ),
            migrations.RemoveField(
                model_name='event',
                name='rule_version',
            ),
            migrations.RemoveField(
                model_name='event',
                name='tenant',
            ),
            migrations.RemoveField(
                model_name='routingrule',
                name='active_version',
            ),
            migrations.RemoveField(
                model_name='routingrule',
                name='tenant',
            ),
            migrations.RemoveField(
                model_name='routingruleversion',
                name='rule',
            ),
            migrations.RemoveField(
                model_name='routingruleversion',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='schedule',
                name='tenant',
            ),
            migrations.RemoveField(
                model_name='segment',
                name='tenant',
            ),
            migrations.DeleteModel(
                name='Campaign',
            ),
            migrations.DeleteModel(
                name='CampaignBatch',
            ),
            migrations.DeleteModel(
                name='Digest',
            ),
            migrations.DeleteModel(
                name='DigestItem',
            ),
            migrations.DeleteModel(
                name='Escalation',
            ),
            migrations.DeleteModel(
                name='Event',
            ),
            migrations.DeleteModel(
                name='RoutingRule',
            ),
            migrations.DeleteModel(
                name='RoutingRuleVersion',
            ),
            migrations.DeleteModel(
                name='Schedule',
            ),
            migrations.DeleteModel(
                name='Segment',
            ),
        ]),
        migrations.RunPython(relabel, relabel_back),
    ]
