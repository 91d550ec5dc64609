"""Roles see the hourly SMS spend (delivery.CostHourly, issue 22): a role's view permissions are fixed
when its migration runs, so the new model needs the roles widened again (the same step as 0015)."""

import importlib

from django.db import migrations

roles = importlib.import_module("admin_console.migrations.0015_roles_retention_rollouts").roles


class Migration(migrations.Migration):
    dependencies = [
        ("admin_console", "0016_queuegauge_provider"), ("delivery", "0020_cost_hourly"),
        ("tracking", "0004_anomaly_ack_tenant"),
    ]
    operations = [migrations.RunPython(roles, migrations.RunPython.noop)]
