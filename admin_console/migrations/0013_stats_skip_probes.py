"""Synthetic probes (delivery_message.metadata ? 'probe') never count in the dashboard's event figures.

A probe is real traffic through a real provider, sent every few minutes per channel and provider; counted,
it would inflate 'sent'/'delivered' and skew the per-provider rates the dashboard shows. The message row
is already fetched by primary key for each log row, so the extra key test costs nothing measurable.
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
    CROSS JOIN LATERAL (SELECT tenant_id, channel, provider, template_key, category, metadata ? 'probe' AS probe
                          FROM delivery_message WHERE id = l.message_id OFFSET 0) m
   WHERE NOT m.probe
     AND CASE WHEN l.event IN ('opened', 'clicked') THEN comms_stats_first(l.message_id, l.event, l.id)
              ELSE true END
   GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$;
"""

REVERSE = r"""
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
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0012_auditentry_to_comms")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
