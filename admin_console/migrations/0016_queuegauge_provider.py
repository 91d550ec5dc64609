"""The queue gauge's failed and dead rows carry the provider that failed them (issue 22 item 5: the
anomaly series `failure_code:<provider>:<code>`, a failure rate per provider *and* error code).

Only failed/dead rows get a provider (comms_stats_provider): a queued or sent row keyed by provider
would multiply the gauge's rows and move between keys on every claim, for no figure anyone reads.

Safe on existing data: the gauge's failed/dead rows were counted without a provider, and a later
change of such a message would subtract from the (…, provider) key it never added to. So, with
delivery_message locked against writes (SHARE, as stats.rebuild does), the failed/dead part of the
gauge and its pending deltas are recounted from the messages themselves. That is one pass over
delivery_message (no index leads with status); on a large table run it in a quiet hour.
"""

from django.db import migrations, models

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION comms_stats_provider(status text, provider text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN status IN ('failed', 'dead') THEN left(coalesce(provider, ''), 64) ELSE '' END
$$;

CREATE OR REPLACE FUNCTION comms_stats_message_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, provider, n)
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code),
         comms_stats_provider(status, provider), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION comms_stats_message_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, provider, n)
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code),
         comms_stats_provider(status, provider), -count(*)
    FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION comms_stats_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, provider, n)
  SELECT tenant_id, priority, channel, status, reason, provider, sum(n)
    FROM (SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code) AS reason,
                 comms_stats_provider(status, provider) AS provider, -count(*) AS n
            FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6
          UNION ALL
          SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code),
                 comms_stats_provider(status, provider), count(*)
            FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6) AS k
   GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
  RETURN NULL;
END $$;
"""

RECOUNT = r"""
LOCK TABLE delivery_message IN SHARE MODE;
DELETE FROM admin_console_queuegauge_delta WHERE status IN ('failed', 'dead');
DELETE FROM admin_console_queuegauge WHERE status IN ('failed', 'dead');
INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, provider, n)
SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code),
       comms_stats_provider(status, provider), count(*)
  FROM delivery_message WHERE status IN ('failed', 'dead') GROUP BY 1, 2, 3, 4, 5, 6;
"""

SQL = r"""
ALTER TABLE admin_console_queuegauge_delta ADD COLUMN provider varchar(64) NOT NULL DEFAULT '';
""" + FUNCTIONS + RECOUNT

# Back to 0011's functions; the gauge's provider keys fold into '' before the old unique key returns.
REVERSE = r"""
CREATE OR REPLACE FUNCTION comms_stats_message_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, n)
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION comms_stats_message_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, n)
  SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), -count(*)
    FROM old_rows GROUP BY 1, 2, 3, 4, 5;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION comms_stats_message_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO admin_console_queuegauge_delta (tenant_id, priority, channel, status, reason, n)
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
LOCK TABLE admin_console_queuegauge IN EXCLUSIVE MODE;
WITH gone AS (DELETE FROM admin_console_queuegauge WHERE provider <> '' RETURNING *)
INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, provider, n)
SELECT tenant_id, priority, channel, status, reason, '', sum(n) FROM gone GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (tenant_id, priority, channel, status, reason, provider)
DO UPDATE SET n = admin_console_queuegauge.n + EXCLUDED.n;
ALTER TABLE admin_console_queuegauge_delta DROP COLUMN provider;
DROP FUNCTION IF EXISTS comms_stats_provider(text, text);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('admin_console', '0015_roles_retention_rollouts'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='queuegauge',
            name='queuegauge_key',
        ),
        migrations.AddField(
            model_name='queuegauge',
            name='provider',
            field=models.CharField(blank=True, default='', help_text="The provider that failed (failed/dead rows only; '' otherwise).", max_length=64),
        ),
        migrations.AddConstraint(
            model_name='queuegauge',
            constraint=models.UniqueConstraint(fields=('tenant_id', 'priority', 'channel', 'status', 'reason', 'provider'), name='queuegauge_key_provider'),
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
