"""The log trigger looks each new log row's message up by primary key, whatever the statistics say.

On a fresh database the planner's statistics can say delivery_message is empty (reltuples=0 until
autovacuum analyses it). With a plain join it then put the message table on the outside of a
nested loop and re-scanned the statement's new rows for every message: 3,000 logs took 20 s,
12,000 took minutes, and every send paid a scan of the whole queue table. A LATERAL lookup with
OFFSET 0 cannot be flattened into a join, so the plan is always one index probe per new row (0009
did the same for the first-open/click check).
"""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION comms_stats_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_event_delta
  SELECT date_trunc('minute', l.at), m.tenant_id, m.channel, coalesce(nullif(m.provider, ''), l.provider, ''),
         m.template_key, m.category,
         CASE WHEN l.event = 'bounced' AND (l.status_code IN ('soft', 'transient')
                                            OR l.data->>'bounce_type' IN ('soft', 'transient')) THEN 'bounced_soft'
              ELSE l.event END,
         count(*)
    FROM new_rows l
    CROSS JOIN LATERAL (SELECT tenant_id, channel, provider, template_key, category
                          FROM delivery_message WHERE id = l.message_id OFFSET 0) m
   WHERE CASE WHEN l.event IN ('opened', 'clicked') THEN comms_stats_first(l.message_id, l.event, l.id)
              ELSE true END
   GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$;
ALTER FUNCTION comms_stats_log_insert() SET enable_seqscan = off;
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0009_stats_first_event")]
    operations = [migrations.RunSQL(SQL, "ALTER FUNCTION comms_stats_log_insert() RESET enable_seqscan;")]
