"""A varied data set for the dashboard tests: messages in every status, logs spread over 8 days."""

from __future__ import annotations

from django.db import connection

SEED_SQL = """
WITH src AS (
  SELECT g,
         (ARRAY['email','email','email','sms','push','in_app','webhook'])[1 + g %% 7] AS channel,
         (ARRAY['queued','sent','sent','delivered','failed','dead','blocked','deferred','cancelled','bounced',
                'scheduled','sending','complained'])[1 + (g * 7) %% 13] AS status,
         g %% 5 AS priority
    FROM generate_series(1, %(n)s) AS g)
INSERT INTO delivery_message (id, tenant_id, channel, priority, category, status, recipient_address, template_key,
  variant, locale, artifact, subject, body, body_html, variables, metadata, payload, request_hash, fallback_channels,
  attempt_count, next_attempt_at, provider, provider_ref, failure_code, failure_reason, created_at, updated_at)
SELECT gen_random_uuid(), CASE WHEN g %% 10 = 0 THEN %(other)s::uuid ELSE %(tenant)s::uuid END, channel, priority,
       (ARRAY['transactional','marketing','operational'])[1 + g %% 3], status, 'user' || g || '@example.com',
       (ARRAY['welcome','order_confirmation','password_reset','newsletter',''])[1 + g %% 5], '', '', '', '', '', '',
       '{}', '{}', '{}', '', '{}', 0, %(now)s - make_interval(secs => g %% 3600),
       CASE WHEN status IN ('queued','scheduled','blocked','deferred','cancelled') THEN ''
            ELSE (ARRAY['smtp','ses'])[1 + g %% 2] END, '',
       CASE status WHEN 'blocked' THEN (ARRAY['PREF_OPTED_OUT','SUPPRESSED','QUIET_HOURS'])[1 + g %% 3]
                   WHEN 'deferred' THEN 'quiet_hours' WHEN 'failed' THEN '550' WHEN 'dead' THEN 'connect' ELSE '' END,
       '', %(now)s - make_interval(secs => g %% 3600), %(now)s
  FROM src
"""

LOG_SQL = """
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id,
       (ARRAY['sent','sent','sent','sent','delivered','delivered','failed','bounced','bounced','complained','opened',
              'clicked','unsubscribed','retrying','dead'])[1 + (abs(hashtext(id::text)) %% 15)],
       %(now)s - make_interval(secs => abs(hashtext(id::text || 'at')) %% (8 * 86400)),
       1, CASE WHEN provider = '' THEN '' ELSE provider END, '', '', '',
       CASE WHEN abs(hashtext(id::text)) %% 4 = 0 THEN '{"bounce_type": "soft"}'::jsonb ELSE '{}'::jsonb END
  FROM delivery_message
"""


def seed(*, n: int, tenant, other_tenant, now) -> None:
    """`n` messages (a tenth for `other_tenant`) and one log row per message, in two statements each."""
    params = {"n": n, "tenant": str(tenant.pk), "other": str(other_tenant.pk), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, params)
        cursor.execute(LOG_SQL, params)
        cursor.execute(LOG_SQL.replace("'at'", "'at2'"), params)
        cursor.execute("ANALYZE delivery_message, delivery_deliverylog")
