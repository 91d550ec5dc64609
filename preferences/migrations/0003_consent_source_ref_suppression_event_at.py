"""Consent rows keyed by their cause (``source_ref``) so a redelivered STOP or a repeated RFC 8058
POST writes no second row; suppressions keep the provider's event time apart from their expiry.

The append-only trigger of 0002 names every column the erasure may not touch; ``source_ref`` joins
that list (recreated here with it), so not even the erasure session flag lets it change.
"""

from django.db import migrations, models

from preferences.migrations import _consent_trigger


class Migration(migrations.Migration):

    dependencies = [
        ('comms', '0006_category_catalogue'),
        ('preferences', '0002_catalogue_and_consent_ledger'),
    ]

    operations = [
        migrations.AddField(
            model_name='consentrecord',
            name='source_ref',
            field=models.CharField(blank=True, default='', help_text="What caused the record, when it has an id of its own (the provider's inbound message id, a hash of the unsubscribe token): a redelivery of the same cause writes no second row.", max_length=128),
        ),
        migrations.AddField(
            model_name='suppression',
            name='event_at',
            field=models.DateTimeField(blank=True, help_text='When the provider says the cause (bounce, complaint) happened; empty for our own entries.', null=True),
        ),
        migrations.AlterField(
            model_name='suppression',
            name='expires_at',
            field=models.DateTimeField(blank=True, help_text="Soft cases clear by themselves; counted from when we applied the entry, not from the provider's event time.", null=True),
        ),
        migrations.AddConstraint(
            model_name='consentrecord',
            constraint=models.UniqueConstraint(condition=models.Q(('source_ref', ''), _negated=True), fields=('tenant', 'source_ref', 'subject_hash'), name='consent_unique_source_ref'),
        ),
        migrations.RunSQL(_consent_trigger.append_only(extra_columns=("source_ref",)),
                          _consent_trigger.append_only(extra_columns=())),
    ]
