"""Database-side guarantees the ORM cannot express.

* delivery_deliverylog is append-only: a trigger rejects UPDATE (DELETE stays possible for
  retention jobs that drop whole messages).
* delivery_message is a hot queue: per-table autovacuum thresholds keep dead index entries from
  slowing the SKIP LOCKED claim scan after large drains.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION comms_reject_update() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deliverylog_append_only BEFORE UPDATE ON delivery_deliverylog
  FOR EACH ROW EXECUTE FUNCTION comms_reject_update();

ALTER TABLE delivery_message SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_insert_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02
);
"""

REVERSE = """
DROP TRIGGER IF EXISTS deliverylog_append_only ON delivery_deliverylog;
ALTER TABLE delivery_message RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor,
                                    autovacuum_analyze_scale_factor);
"""


class Migration(migrations.Migration):
    dependencies = [("delivery", "0002_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
