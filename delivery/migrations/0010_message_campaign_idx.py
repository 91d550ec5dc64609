"""Messages tagged with a campaign id in their own metadata (single sends), for tracking's recount.

A partial expression index: bulk and campaign rows (metadata '{}' or without the key) are not in
it, so the COPY fan-out pays nothing, and `metadata -> 'campaign_id' = <id>` implies the predicate.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("delivery", "0009_claim_order_by_id")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX message_campaign_tag_idx ON delivery_message ((metadata -> 'campaign_id')) "
            "WHERE (metadata -> 'campaign_id') IS NOT NULL",
            "DROP INDEX message_campaign_tag_idx",
        ),
    ]
