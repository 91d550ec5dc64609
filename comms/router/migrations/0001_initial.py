"""The router models, moved from the kernel app comms (comms migration 0007): state only."""

import django.db.models.deletion
import django.utils.timezone
import uuid_utils.compat
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('comms', '0007_router_campaigns_own_apps'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables exist already (created by comms 0004 under these names).
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Digest',
                fields=[
                    ('id', models.UUIDField(default=uuid_utils.compat.uuid7, editable=False, primary_key=True, serialize=False)),
                    ('key', models.CharField(max_length=255)),
                    ('template_key', models.CharField(max_length=128)),
                    ('channels', models.JSONField(default=list)),
                    ('category', models.CharField(choices=[('transactional', 'Transactional'), ('marketing', 'Marketing'), ('operational', 'Operational'), ('system', 'System'), ('security', 'Security'), ('legal', 'Legal'), ('receipts', 'Receipts'), ('booking', 'Booking'), ('messages', 'Messages'), ('reviews', 'Reviews'), ('promotions', 'Promotions'), ('finance', 'Finance')], default='transactional', max_length=32)),
                    ('priority', models.PositiveSmallIntegerField(choices=[(0, 'P0 emergency'), (1, 'P1 alert'), (2, 'P2 newsletter'), (3, 'P3 campaign'), (4, 'P4 transactional')], default=3)),
                    ('cadence', models.CharField(blank=True, help_text='window | hourly | daily | weekly', max_length=16)),
                    ('state', models.CharField(choices=[('open', 'Collecting'), ('sent', 'Sent'), ('empty', 'Empty (not sent)'), ('failed', 'Failed')], default='open', max_length=8)),
                    ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('due_at', models.DateTimeField()),
                    ('closed_at', models.DateTimeField(blank=True, null=True)),
                    ('message_id', models.UUIDField(blank=True, null=True)),
                    ('failure', models.TextField(blank=True)),
                    ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.recipient')),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                ],
                options={
                    'db_table': 'comms_digest',
                },
            ),
            migrations.CreateModel(
                name='Event',
                fields=[
                    ('id', models.UUIDField(default=uuid_utils.compat.uuid7, editable=False, primary_key=True, serialize=False)),
                    ('name', models.CharField(max_length=128)),
                    ('cause_ref', models.CharField(blank=True, max_length=255)),
                    ('actor', models.JSONField(blank=True, default=dict)),
                    ('recipients', models.JSONField(blank=True, default=list)),
                    ('audience', models.JSONField(blank=True, default=dict)),
                    ('category', models.CharField(choices=[('transactional', 'Transactional'), ('marketing', 'Marketing'), ('operational', 'Operational'), ('system', 'System'), ('security', 'Security'), ('legal', 'Legal'), ('receipts', 'Receipts'), ('booking', 'Booking'), ('messages', 'Messages'), ('reviews', 'Reviews'), ('promotions', 'Promotions'), ('finance', 'Finance')], default='transactional', max_length=32)),
                    ('priority', models.PositiveSmallIntegerField(choices=[(0, 'P0 emergency'), (1, 'P1 alert'), (2, 'P2 newsletter'), (3, 'P3 campaign'), (4, 'P4 transactional')], default=2)),
                    ('payload', models.JSONField(blank=True, default=dict)),
                    ('state', models.CharField(choices=[('routed', 'Routed'), ('no_route', 'No route'), ('duplicate', 'Duplicate (dedupe window)'), ('failed', 'Nothing could be produced')], default='routed', max_length=16)),
                    ('outcome', models.JSONField(blank=True, default=list, help_text='Per step and recipient: what was produced, why.')),
                    ('produced', models.PositiveIntegerField(default=0)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                ],
                options={
                    'db_table': 'comms_event',
                },
            ),
            migrations.CreateModel(
                name='Escalation',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('message_id', models.UUIDField(help_text='The message whose read state is watched.', unique=True)),
                    ('due_at', models.DateTimeField()),
                    ('channels', models.JSONField(default=list)),
                    ('template_key', models.CharField(max_length=128)),
                    ('variables', models.JSONField(default=dict)),
                    ('category', models.CharField(choices=[('transactional', 'Transactional'), ('marketing', 'Marketing'), ('operational', 'Operational'), ('system', 'System'), ('security', 'Security'), ('legal', 'Legal'), ('receipts', 'Receipts'), ('booking', 'Booking'), ('messages', 'Messages'), ('reviews', 'Reviews'), ('promotions', 'Promotions'), ('finance', 'Finance')], default='transactional', max_length=32)),
                    ('priority', models.PositiveSmallIntegerField(choices=[(0, 'P0 emergency'), (1, 'P1 alert'), (2, 'P2 newsletter'), (3, 'P3 campaign'), (4, 'P4 transactional')], default=2)),
                    ('state', models.CharField(choices=[('pending', 'Pending'), ('sent', 'Escalated'), ('resolved', 'Read in time'), ('failed', 'Failed')], default='pending', max_length=8)),
                    ('escalated_message_id', models.UUIDField(blank=True, null=True)),
                    ('detail', models.TextField(blank=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.recipient')),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                    ('event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='router.event')),
                ],
                options={
                    'db_table': 'comms_escalation',
                },
            ),
            migrations.CreateModel(
                name='DigestItem',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('item_key', models.CharField(help_text='One item per event and step, however often it arrives.', max_length=255)),
                    ('data', models.JSONField(default=dict)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('digest', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='router.digest')),
                    ('event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='router.event')),
                ],
                options={
                    'db_table': 'comms_digestitem',
                },
            ),
            migrations.CreateModel(
                name='RoutingRule',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('event_name', models.CharField(help_text='e.g. booking.confirmed', max_length=128)),
                    ('description', models.TextField(blank=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                ],
                options={
                    'db_table': 'comms_routingrule',
                },
            ),
            migrations.CreateModel(
                name='RoutingRuleVersion',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('version', models.PositiveIntegerField()),
                    ('definition', models.JSONField()),
                    ('notes', models.TextField(blank=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('rule', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='router.routingrule')),
                ],
                options={
                    'db_table': 'comms_routingruleversion',
                    'ordering': ['rule', '-version'],
                },
            ),
            migrations.AddField(
                model_name='routingrule',
                name='active_version',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='router.routingruleversion'),
            ),
            migrations.AddField(
                model_name='event',
                name='rule_version',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='router.routingruleversion'),
            ),
            migrations.CreateModel(
                name='Schedule',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=200)),
                    ('kind', models.CharField(choices=[('once', 'One time'), ('cron', 'Recurring (cron)')], max_length=8)),
                    ('cron', models.CharField(blank=True, help_text="Five fields, e.g. '0 9 * * 1' (Mondays 09:00).", max_length=120)),
                    ('timezone', models.CharField(default='UTC', max_length=64)),
                    ('run_at', models.DateTimeField(blank=True, null=True)),
                    ('event', models.JSONField(help_text='The event to post: {name, recipients|audience, payload, category, priority}.')),
                    ('next_run_at', models.DateTimeField(blank=True, null=True)),
                    ('last_run_at', models.DateTimeField(blank=True, null=True)),
                    ('run_count', models.PositiveIntegerField(default=0)),
                    ('last_error', models.TextField(blank=True)),
                    ('cancelled_at', models.DateTimeField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                ],
                options={
                    'db_table': 'comms_schedule',
                },
            ),
            migrations.AddIndex(
                model_name='digest',
                index=models.Index(condition=models.Q(('state', 'open')), fields=['due_at'], name='digest_due_idx'),
            ),
            migrations.AddConstraint(
                model_name='digest',
                constraint=models.UniqueConstraint(condition=models.Q(('state', 'open')), fields=('tenant', 'recipient', 'key'), name='digest_one_open_per_key'),
            ),
            migrations.AddIndex(
                model_name='escalation',
                index=models.Index(condition=models.Q(('state', 'pending')), fields=['due_at'], name='escalation_due_idx'),
            ),
            migrations.AddConstraint(
                model_name='digestitem',
                constraint=models.UniqueConstraint(fields=('digest', 'item_key'), name='digest_item_unique'),
            ),
            migrations.AddConstraint(
                model_name='routingruleversion',
                constraint=models.UniqueConstraint(fields=('rule', 'version'), name='routing_rule_version_unique'),
            ),
            migrations.AddConstraint(
                model_name='routingrule',
                constraint=models.UniqueConstraint(fields=('tenant', 'event_name'), name='routing_rule_unique_event'),
            ),
            migrations.AddIndex(
                model_name='event',
                index=models.Index(fields=['tenant', 'state', '-created_at'], name='event_state_idx'),
            ),
            migrations.AddConstraint(
                model_name='event',
                constraint=models.UniqueConstraint(condition=models.Q(('cause_ref', ''), _negated=True), fields=('tenant', 'name', 'cause_ref'), name='event_unique_cause'),
            ),
            migrations.AddIndex(
                model_name='schedule',
                index=models.Index(condition=models.Q(('cancelled_at__isnull', True)), fields=['next_run_at'], name='schedule_due_idx'),
            ),
        ]),
    ]
