from django.db import migrations

# comms_reject_update() comes from delivery's 0003_queue_tuning (the delivery log uses it too).
SQL = """
CREATE TRIGGER auditentry_append_only BEFORE UPDATE OR DELETE ON admin_console_auditentry
  FOR EACH ROW EXECUTE FUNCTION comms_reject_update();
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0001_initial"), ("delivery", "0003_queue_tuning")]
    operations = [migrations.RunSQL(SQL, "DROP TRIGGER IF EXISTS auditentry_append_only ON admin_console_auditentry;")]
