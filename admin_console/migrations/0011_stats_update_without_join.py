"""The queue-gauge UPDATE trigger sums old and new rows separately instead of joining them.

The join `old_rows o JOIN new_rows w ON w.id = o.id` runs over two transition tables, which have no
statistics. PL/pgSQL caches the trigger's plan per session, so a worker's long-lived connection
that planned it on small claims (a nested loop) kept that plan for a 10,000-row campaign release:
10,000 x 10,000 comparisons over spilled tuplestores, 35 s with the campaign row locked (a pause
waited that long; bench/campaign.py's sampler caught it). Subtracting every old row's key and
adding every new row's key gives the same net deltas (a row whose key did not change cancels out)
in two linear scans, whatever the plan.
"""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION comms_stats_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta
  SELECT tenant_id, priority, channel, status, reason, sum(n)
    FROM (SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code) AS reason,
                 -count(*) AS n
            FROM old_rows GROUP BY 1, 2, 3, 4, 5
          UNION ALL
          SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), count(*)
            FROM new_rows GROUP BY 1, 2, 3, 4, 5) AS k
   GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
  RETURN NULL;
END $$;
"""

REVERSE = r"""
CREATE OR REPLACE FUNCTION comms_stats_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


class Migration(migrations.Migration):
    dependencies = [("admin_console", "0010_stats_log_lookup")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
