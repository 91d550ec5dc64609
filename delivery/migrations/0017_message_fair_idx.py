# Tenant fairness (issue 21): the claim's per-tenant index. Built CONCURRENTLY: on a large queue table
# a plain CREATE INDEX would block every enqueue and claim while it runs.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('delivery', '0016_deliverability_pools'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='message',
            index=models.Index(condition=models.Q(('status', 'queued')), fields=['priority', 'tenant', 'next_attempt_at', 'id'], name='message_fair_idx'),
        ),
    ]
