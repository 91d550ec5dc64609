"""Join main's 0006_merge_i4_i5 with i5's own 0006_i5_merge line (both merge the same two 0004/0005s)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("delivery", "0006_merge_i4_i5"), ("delivery", "0007_i5_provider_category_choices")]
    operations = []
