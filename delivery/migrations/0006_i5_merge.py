from django.db import migrations


class Migration(migrations.Migration):
    """Joins issue 5's category choices (0004_i5_categories) with the channel-health line."""

    dependencies = [("delivery", "0004_i5_categories"), ("delivery", "0005_channel_health")]
    operations = []
