from django.db import migrations


def create_default(apps, schema_editor):
    Tenant = apps.get_model("comms", "Tenant")
    Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})


class Migration(migrations.Migration):
    dependencies = [("comms", "0001_initial")]
    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
