"""The campaigns models, moved from the kernel app comms (comms migration 0007): state only."""

import django.contrib.postgres.fields
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
                name='Segment',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.SlugField(max_length=128)),
                    ('description', models.TextField(blank=True)),
                    ('filter', models.JSONField(default=dict, help_text='{"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}')),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                ],
                options={
                    'db_table': 'comms_segment',
                },
            ),
            migrations.CreateModel(
                name='Campaign',
                fields=[
                    ('id', models.UUIDField(default=uuid_utils.compat.uuid7, editable=False, primary_key=True, serialize=False)),
                    ('name', models.CharField(max_length=200)),
                    ('channels', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[('email', 'Email'), ('sms', 'SMS'), ('push', 'Push'), ('in_app', 'In-app'), ('webhook', 'Webhook')], max_length=16), default=list, size=None)),
                    ('template_key', models.CharField(max_length=128)),
                    ('variables', models.JSONField(blank=True, default=dict, help_text='Shared variables (CSV columns add per row).')),
                    ('category', models.CharField(choices=[('transactional', 'Transactional'), ('marketing', 'Marketing'), ('operational', 'Operational'), ('system', 'System'), ('security', 'Security'), ('legal', 'Legal'), ('receipts', 'Receipts'), ('booking', 'Booking'), ('messages', 'Messages'), ('reviews', 'Reviews'), ('promotions', 'Promotions'), ('finance', 'Finance')], default='marketing', max_length=32)),
                    ('priority', models.PositiveSmallIntegerField(choices=[(0, 'P0 emergency'), (1, 'P1 alert'), (2, 'P2 newsletter'), (3, 'P3 campaign'), (4, 'P4 transactional')], default=3)),
                    ('audience_kind', models.CharField(choices=[('list', 'List of recipient ids'), ('segment', 'Saved segment'), ('csv', 'Uploaded CSV')], default='list', max_length=8)),
                    ('audience_list', models.JSONField(blank=True, default=list, help_text='Recipient ids (list) or accepted CSV rows ({recipient_id|to, variables}).')),
                    ('audience_errors', models.JSONField(blank=True, default=list, help_text='CSV rows refused, with line and reason.')),
                    ('schedule_kind', models.CharField(choices=[('now', 'As soon as scheduled'), ('at', 'At a time'), ('local', "At a local time in each recipient's timezone")], default='now', max_length=8)),
                    ('send_at', models.DateTimeField(blank=True, help_text="For 'at': the instant.", null=True)),
                    ('local_date', models.DateField(blank=True, help_text="For 'local': the day …", null=True)),
                    ('local_time', models.TimeField(blank=True, help_text="… and the wall-clock time in each recipient's zone.", null=True)),
                    ('throttle_per_minute', models.PositiveIntegerField(blank=True, null=True)),
                    ('state', models.CharField(choices=[('draft', 'Draft'), ('scheduled', 'Scheduled'), ('running', 'Running'), ('paused', 'Paused'), ('completed', 'Completed'), ('cancelled', 'Cancelled')], default='draft', max_length=10)),
                    ('start_at', models.DateTimeField(blank=True, help_text='When the fan-out begins.', null=True)),
                    ('audience_size', models.PositiveIntegerField(default=0)),
                    ('queued_count', models.PositiveIntegerField(default=0, help_text='Rows written so far by the fan-out.')),
                    ('fanout_done', models.BooleanField(default=False)),
                    ('paused_at', models.DateTimeField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='comms.tenant')),
                    ('segment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='campaigns.segment')),
                ],
                options={
                    'db_table': 'comms_campaign',
                },
            ),
            migrations.CreateModel(
                name='CampaignBatch',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('seq', models.PositiveIntegerField()),
                    ('channel', models.CharField(choices=[('email', 'Email'), ('sms', 'SMS'), ('push', 'Push'), ('in_app', 'In-app'), ('webhook', 'Webhook')], max_length=16)),
                    ('batch_id', models.UUIDField()),
                    ('offset_seconds', models.PositiveIntegerField(default=0, help_text='Throttle slot after the start (or local time).')),
                    ('send_at', models.DateTimeField(blank=True, null=True)),
                    ('size', models.PositiveIntegerField(default=0)),
                    ('released_at', models.DateTimeField(blank=True, help_text='When its held rows were queued.', null=True)),
                    ('drained_at', models.DateTimeField(blank=True, help_text='When no row of it was left to send.', null=True)),
                    ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batches', to='campaigns.campaign')),
                ],
                options={
                    'db_table': 'comms_campaignbatch',
                    'constraints': [models.UniqueConstraint(fields=('campaign', 'seq', 'channel'), name='campaign_batch_unique')],
                },
            ),
            migrations.AddConstraint(
                model_name='segment',
                constraint=models.UniqueConstraint(fields=('tenant', 'name'), name='segment_unique_name'),
            ),
            migrations.AddIndex(
                model_name='campaign',
                index=models.Index(fields=['state', 'start_at'], name='campaign_due_idx'),
            ),
        ]),
    ]
