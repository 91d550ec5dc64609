"""Joins the provider-category/channel-health line (issue 4) with the category choices (issue 5)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0004_i5_categories"),
        ("delivery", "0005_channel_health"),
    ]
    operations = []
