"""Unique opens/clicks: the "was there an earlier one" check is a per-row index probe in a PL/pgSQL
function, so no planner estimate (stale statistics after a bulk load) can turn it into a nested
loop over the whole delivery log."""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION comms_stats_first(p_message uuid, p_event text, p_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM delivery_deliverylog
                      WHERE message_id = p_message AND id < p_id AND event = p_event);
END $$;

CREATE OR REPLACE FUNCTION comms_stats_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_event_delta
  SELECT date_trunc('minute', l.at), m.tenant_id, m.channel, coalesce(nullif(m.provider, ''), l.provider, ''),
         m.template_key, m.category,
         CASE WHEN l.event = 'bounced' AND (l.status_code IN ('soft', 'transient')
                                            OR l.data->>'bounce_type' IN ('soft', 'transient')) THEN 'bounced_soft'
              ELSE l.event END,
         count(*)
    FROM new_rows l JOIN delivery_message m ON m.id = l.message_id
   WHERE CASE WHEN l.event IN ('opened', 'clicked') THEN comms_stats_first(l.message_id, l.event, l.id)
              ELSE true END
   GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0008_roles_reach")]
    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
