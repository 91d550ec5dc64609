"""The audit log joins the kernel's state (moved from admin_console, whose 0012 removed it).

State only: the model sets ``db_table = "admin_console_auditentry"``, the table, its index and its
append-only trigger stay as they are.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("comms", "0007_router_campaigns_own_apps"),
        ("admin_console", "0012_auditentry_to_comms"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name="AuditEntry",
                fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                               verbose_name="ID")),
                    ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ("actor_label", models.CharField(help_text="User name or API key prefix, kept if the user goes.",
                                                     max_length=200)),
                    ("action", models.CharField(db_index=True, max_length=64)),
                    ("target_type", models.CharField(max_length=64)),
                    ("target_id", models.CharField(max_length=64)),
                    ("target_label", models.CharField(blank=True, max_length=255)),
                    ("diff", models.JSONField(blank=True, default=dict)),
                    ("reason", models.TextField(blank=True)),
                    ("ip", models.GenericIPAddressField(blank=True, null=True)),
                    ("actor", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                                on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                                to=settings.AUTH_USER_MODEL)),
                    ("tenant", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                                 on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                                 to="comms.tenant")),
                ],
                options={
                    "verbose_name_plural": "audit entries",
                    "db_table": "admin_console_auditentry",
                    "ordering": ["-at"],
                    "indexes": [models.Index(fields=["target_type", "target_id"],
                                             name="admin_conso_target__eebac3_idx")],
                },
            ),
        ]),
    ]
