from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION comms_reject_update() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auditentry_append_only BEFORE UPDATE OR DELETE ON admin_console_auditentry
  FOR EACH ROW EXECUTE FUNCTION comms_reject_update();
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0001_initial")]
    operations = [migrations.RunSQL(SQL, "DROP TRIGGER IF EXISTS auditentry_append_only ON admin_console_auditentry;")]
