# The parallel branches' duplicate merge migrations were folded into one line (0006 → 0007); this
# node is kept so databases that applied it stay consistent.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("delivery", "0007_provider_categories_choices")]
    operations = []
