"""Joins main's merge of the issue 4/5 lines with issue 5's own (both empty merges of the same parents)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0006_merge_i4_i5"),
        ("delivery", "0007_i5_provider_category_choices"),
    ]

    operations = []
