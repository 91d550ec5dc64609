"""Triggers that keep the dashboard aggregates exact, in the same transaction as the change.

Statement-level triggers with transition tables: a 100,000-row COPY costs one grouped INSERT of a
few delta rows, a claim of 200 rows two, an outcome two. The deltas go to index-less tables (no
lock is ever contended, unlike an upsert on a hot counter row); `admin_console.stats.rollup` folds
them into the keyed tables. The last step backfills the aggregates from existing rows.
"""

from django.db import migrations

SQL = r"""
CREATE TABLE admin_console_queuegauge_delta (
  tenant_id uuid NOT NULL, priority smallint NOT NULL, channel varchar(16) NOT NULL,
  status varchar(16) NOT NULL, reason varchar(64) NOT NULL, n bigint NOT NULL);
CREATE TABLE admin_console_event_delta (
  minute timestamptz NOT NULL, tenant_id uuid NOT NULL, channel varchar(16) NOT NULL, provider varchar(64) NOT NULL,
  template_key varchar(128) NOT NULL, category varchar(32) NOT NULL, event varchar(24) NOT NULL, n bigint NOT NULL);

CREATE FUNCTION comms_stats_reason(status text, code text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN status IN ('blocked', 'deferred', 'failed', 'dead') THEN left(coalesce(code, ''), 64) ELSE '' END
$$;

CREATE FUNCTION comms_stats_message_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5;
  RETURN NULL;
END $$;

CREATE FUNCTION comms_stats_message_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), -count(*)
    FROM old_rows GROUP BY 1, 2, 3, 4, 5;
  RETURN NULL;
END $$;

CREATE FUNCTION comms_stats_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta
  SELECT k.tenant_id, k.priority, k.channel, k.status, k.reason, sum(k.n)
    FROM old_rows o JOIN new_rows w ON w.id = o.id
   CROSS JOIN LATERAL (VALUES
     (o.tenant_id, o.priority, o.channel, o.status, comms_stats_reason(o.status, o.failure_code), -1),
     (w.tenant_id, w.priority, w.channel, w.status, comms_stats_reason(w.status, w.failure_code), 1)
   ) AS k(tenant_id, priority, channel, status, reason, n)
   WHERE o.status <> w.status OR o.priority <> w.priority OR o.channel <> w.channel OR o.tenant_id <> w.tenant_id
      OR o.failure_code IS DISTINCT FROM w.failure_code
   GROUP BY 1, 2, 3, 4, 5 HAVING sum(k.n) <> 0;
  RETURN NULL;
END $$;

CREATE FUNCTION comms_stats_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_event_delta
  SELECT date_trunc('minute', l.at), m.tenant_id, m.channel, coalesce(nullif(l.provider, ''), m.provider, ''),
         m.template_key, m.category,
         CASE WHEN l.event = 'bounced' AND l.data->>'bounce_type' IN ('soft', 'transient') THEN 'bounced_soft'
              ELSE l.event END,
         count(*)
    FROM new_rows l JOIN delivery_message m ON m.id = l.message_id
   GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$;

CREATE TRIGGER message_stats_insert AFTER INSERT ON delivery_message
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_message_insert();
CREATE TRIGGER message_stats_update AFTER UPDATE ON delivery_message
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_message_update();
CREATE TRIGGER message_stats_delete AFTER DELETE ON delivery_message
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_message_delete();
CREATE TRIGGER deliverylog_stats_insert AFTER INSERT ON delivery_deliverylog
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_log_insert();

-- Emptying a table empties what is derived from it (TRUNCATE fires no row or statement DML triggers).
CREATE FUNCTION comms_stats_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME IN ('delivery_message', 'admin_console_queuegauge') THEN
    TRUNCATE admin_console_queuegauge_delta;
    IF TG_TABLE_NAME = 'delivery_message' THEN DELETE FROM admin_console_queuegauge; END IF;
  ELSE
    TRUNCATE admin_console_event_delta;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER message_stats_truncate AFTER TRUNCATE ON delivery_message
  FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_truncate();
CREATE TRIGGER queuegauge_truncate AFTER TRUNCATE ON admin_console_queuegauge
  FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_truncate();
CREATE TRIGGER eventhour_truncate AFTER TRUNCATE ON admin_console_eventhour
  FOR EACH STATEMENT EXECUTE FUNCTION comms_stats_truncate();

INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, n)
SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), count(*)
  FROM delivery_message GROUP BY 1, 2, 3, 4, 5;
INSERT INTO admin_console_event_delta
SELECT date_trunc('minute', l.at), m.tenant_id, m.channel, coalesce(nullif(l.provider, ''), m.provider, ''),
       m.template_key, m.category, l.event, count(*)
  FROM delivery_deliverylog l JOIN delivery_message m ON m.id = l.message_id
 WHERE l.at > now() - interval '35 days'
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
"""

REVERSE = """
DROP TRIGGER IF EXISTS message_stats_insert ON delivery_message;
DROP TRIGGER IF EXISTS message_stats_update ON delivery_message;
DROP TRIGGER IF EXISTS message_stats_delete ON delivery_message;
DROP TRIGGER IF EXISTS deliverylog_stats_insert ON delivery_deliverylog;
DROP TRIGGER IF EXISTS message_stats_truncate ON delivery_message;
DROP TRIGGER IF EXISTS queuegauge_truncate ON admin_console_queuegauge;
DROP TRIGGER IF EXISTS eventhour_truncate ON admin_console_eventhour;
DROP FUNCTION IF EXISTS comms_stats_truncate();
DROP FUNCTION IF EXISTS comms_stats_message_insert(), comms_stats_message_update(), comms_stats_message_delete(),
  comms_stats_log_insert();
DROP FUNCTION IF EXISTS comms_stats_reason(text, text);
DROP TABLE IF EXISTS admin_console_queuegauge_delta, admin_console_event_delta;
DELETE FROM admin_console_queuegauge;
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0004_stats_tables"), ("delivery", "0003_queue_tuning")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
