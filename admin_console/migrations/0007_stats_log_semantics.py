"""Log events are counted against the provider that sent the message (a delivery report arrives
from the ESP's webhook name, e.g. 'sendgrid', but belongs to the sending provider's figures);
bounce type comes from status_code (tracking writes 'hard'/'soft' there); opens and clicks count
once per message (unique open/click rates)."""

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
    FROM new_rows l JOIN delivery_message m ON m.id = l.message_id
   WHERE l.event NOT IN ('opened', 'clicked')
      OR NOT EXISTS (SELECT 1 FROM delivery_deliverylog p
                      WHERE p.message_id = l.message_id AND p.event = l.event AND p.id < l.id)
   GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0006_stats_per_day")]
    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
