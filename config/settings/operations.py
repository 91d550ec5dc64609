"""Settings, part 4: deliverability, WebSocket, warm-up, previews, tenant fairness, many nodes,
retention, staged rollouts and insight (assistants, analytics, anomalies, scores, costs)."""

from __future__ import annotations

from .base import CELERY_BEAT_SCHEDULE, REDIS_URL, REST_FRAMEWORK, env

# --- deliverability: spam scoring, probes, suppression sync, self-test (issue 19) ----------------------
# spamd (SpamAssassin) over the spamc protocol; empty host = no spam check ("unavailable" in previews).
COMMS_SPAMD_HOST = env.str("COMMS_SPAMD_HOST", default="")
COMMS_SPAMD_PORT = env.int("COMMS_SPAMD_PORT", default=783)
COMMS_SPAMD_TIMEOUT = env.float("COMMS_SPAMD_TIMEOUT", default=5.0)
# templates_app (below delivery) reaches the scorer by this dotted path.
COMMS_SPAM_SCORER = "delivery.deliverability.spam.spam_score"
# Send-time gate for marketing email: hold (deferred, reason COMMS_SPAM_HOLD) above this score; 0 = off.
COMMS_SPAM_GATE_THRESHOLD = env.float("COMMS_SPAM_GATE_THRESHOLD", default=0.0)
COMMS_SPAM_GATE_HOLD_WHEN_DOWN = env.bool("COMMS_SPAM_GATE_HOLD_WHEN_DOWN", default=False)
COMMS_SPAM_GATE_HOLD_SECONDS = env.int("COMMS_SPAM_GATE_HOLD_SECONDS", default=3600)
# Synthetic probes: per channel a sandbox address ({"email": "probe@sink.test", "sms": "+15005550006"}).
COMMS_PROBE_RECIPIENTS = env.json("COMMS_PROBE_RECIPIENTS", default={})
COMMS_PROBE_SECONDS = env.float("COMMS_PROBE_SECONDS", default=300.0)
COMMS_PROBE_SLO_SENT_SECONDS = env.float("COMMS_PROBE_SLO_SENT_SECONDS", default=60.0)
COMMS_PROBE_SLO_DELIVERED_SECONDS = env.float("COMMS_PROBE_SLO_DELIVERED_SECONDS", default=300.0)
# SMTP has no delivery receipt: the sink's Maildir (set by `make run`) tells when a probe arrived.
COMMS_PROBE_MAILDIR = env.str("COMMS_PROBE_MAILDIR", default="")
# The ops alert path (tracking sits above delivery: named here); log + COMMS_ALERT_WEBHOOK_URL.
COMMS_OPS_ALERT = "tracking.services.alerts.ops_notify"
CELERY_BEAT_SCHEDULE["deliverability-probes"] = {
    "task": "delivery.tasks.probes_tick", "schedule": COMMS_PROBE_SECONDS,
    "options": {"queue": "p3", "expires": 120},
}
# Suppression sync with the ESPs: which ones ("sendgrid,mailgun,postmark,ses"), how often, request timeout.
COMMS_SUPPRESSION_SYNC_ESPS = env.list("COMMS_SUPPRESSION_SYNC_ESPS", default=[])
COMMS_SUPPRESSION_SYNC_SECONDS = env.float("COMMS_SUPPRESSION_SYNC_SECONDS", default=900.0)
COMMS_SUPPRESSION_SYNC_TIMEOUT = env.float("COMMS_SUPPRESSION_SYNC_TIMEOUT", default=10.0)
COMMS_SUPPRESSION_SYNC = {  # API base URLs (the loopback stand-ins in dev/tests) and keys
    "sendgrid": {"api_url": env.str("SENDGRID_API_URL", default="https://api.sendgrid.com/v3/"),
                 "api_key": env.str("SENDGRID_API_KEY", default="")},
    "mailgun": {"api_url": env.str("MAILGUN_API_URL", default="https://api.mailgun.net/v3/"),
                "api_key": env.str("MAILGUN_API_KEY", default=""),
                "domain": env.str("MAILGUN_SENDER_DOMAIN", default="")},
    "postmark": {"api_url": env.str("POSTMARK_API_URL", default="https://api.postmarkapp.com/"),
                 "api_key": env.str("POSTMARK_SERVER_TOKEN", default=""),
                 "stream": env.str("POSTMARK_MESSAGE_STREAM", default="outbound")},
    "ses": {"endpoint_url": env.str("COMMS_SES_ENDPOINT", default=""),
            "region_name": env.str("AWS_REGION", default="us-east-1")},
}
CELERY_BEAT_SCHEDULE["deliverability-suppression-sync"] = {
    "task": "delivery.tasks.suppression_sync", "schedule": COMMS_SUPPRESSION_SYNC_SECONDS,
    "options": {"queue": "p4", "expires": 600},
}
# Compliance self-test: the postal address marketing footers must carry (CAN-SPAM 15 U.S.C. 7704(a)(5)).
COMMS_POSTAL_ADDRESS = env.str("COMMS_POSTAL_ADDRESS", default="")
COMMS_SELFTEST_SAMPLE = env.int("COMMS_SELFTEST_SAMPLE", default=200)
# --- deliverability: sending domains, DKIM, DNS checks (issue 19) ------------------------------------
# Resolver for the DNS checks: "ip" or "ip:port" entries (empty: the system resolver), per-query timeout.
COMMS_DNS_NAMESERVERS = env.list("COMMS_DNS_NAMESERVERS", default=[])
COMMS_DNS_TIMEOUT = env.float("COMMS_DNS_TIMEOUT", default=3.0)
# SPF mechanisms the relay/ESP needs in a sending domain's SPF record, e.g. "include:amazonses.com".
COMMS_SPF_INCLUDES = env.list("COMMS_SPF_INCLUDES", default=[])
# Key algorithms a new sending domain (and a rotation) gets; both sign (dual signing, RFC 8463 §3).
COMMS_DKIM_ALGORITHMS = env.list("COMMS_DKIM_ALGORITHMS", default=["rsa", "ed25519"])
# How long a rotated-out key stays published (mail signed with it may sit in queues for days).
COMMS_DKIM_ROTATION_OVERLAP_HOURS = env.float("COMMS_DKIM_ROTATION_OVERLAP_HOURS", default=168.0)
COMMS_DKIM_SIGN = env.bool("COMMS_DKIM_SIGN", default=True)
# The compliance self-test signs its rebuilt sample with the same keys (delivery.deliverability.selftest).
COMMS_DKIM_SIGNER = env.str("COMMS_DKIM_SIGNER", default="delivery.deliverability.dkim.selftest_sign")
# The return-path (bounce) domain's record: a CNAME to the ESP's bounce host, else an MX to this host.
COMMS_RETURN_PATH_CNAME = env.str("COMMS_RETURN_PATH_CNAME", default="")
COMMS_BOUNCE_MX = env.str("COMMS_BOUNCE_MX", default="")
# Where aggregate DMARC reports go in the suggested record (default dmarc-reports@<domain>).
COMMS_DMARC_RUA = env.str("COMMS_DMARC_RUA", default="")
CELERY_BEAT_SCHEDULE["deliverability-dns-check"] = {
    "task": "delivery.tasks.sending_domains_check",
    "schedule": env.float("COMMS_DNS_CHECK_SECONDS", default=3600.0),
    "options": {"queue": "p4", "expires": 1800},
}
# Conversations over WebSocket (issue 17): Django Channels with its Redis layer, so every ASGI process
# on every machine sees the others' events.
# The pub/sub layer: a group_send is ONE Redis PUBLISH that each ASGI process fans out to its own sockets
# (the list-based core layer pushes and pops one Redis entry per socket: 100 participants = 100 round
# trips). At-most-once is right for live notices: clients catch up from the API after a reconnect.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "comms-asgi"},
    }
}
# Browser origins allowed to open the WebSocket (a missing Origin — a native client — is allowed; the
# token is the credential). Empty: the hosts of ALLOWED_HOSTS on http(s) and any port.
COMMS_WS_ALLOWED_ORIGINS = env.list("COMMS_WS_ALLOWED_ORIGINS", default=[])
COMMS_WS_AUTH_SECONDS = env.float("COMMS_WS_AUTH_SECONDS", default=5.0)
COMMS_PRESENCE_TTL_SECONDS = env.int("COMMS_PRESENCE_TTL_SECONDS", default=60)
COMMS_TYPING_THROTTLE_SECONDS = env.float("COMMS_TYPING_THROTTLE_SECONDS", default=2.0)
COMMS_TYPING_EXPIRES_SECONDS = env.float("COMMS_TYPING_EXPIRES_SECONDS", default=5.0)
# Called on commit with message_id= after every conversation message (SMS/email fan-out, offline digests).
COMMS_CONVERSATION_MESSAGE_HOOKS = env.list("COMMS_CONVERSATION_MESSAGE_HOOKS",
                                            default=["comms.conversations.bridge.message_fanout_hook"])

# Deliverability: warm-up ladders (delivery.deliverability.warmup). The share of each day's cap kept
# for P0/P1 and engaged recipients, what "engaged" looks back over, and who scores engagement
# (tracking sits above delivery: named here, not imported).
COMMS_WARMUP_RESERVE = env.float("COMMS_WARMUP_RESERVE", default=0.1)
COMMS_WARMUP_ENGAGEMENT_DAYS = env.int("COMMS_WARMUP_ENGAGEMENT_DAYS", default=30)
COMMS_ENGAGEMENT_SCORER = "tracking.selectors.engagement_scores"

# Template preview images (issue 20): headless Chromium screenshots of email versions. Empty: the
# chromium on PATH (or /usr/bin/chromium); none found means "previews unavailable", not an error.
COMMS_PREVIEW_CHROMIUM = env.str("COMMS_PREVIEW_CHROMIUM", default="")
COMMS_PREVIEW_TIMEOUT = env.int("COMMS_PREVIEW_TIMEOUT", default=20)  # seconds per launch and per page
# Tenant fairness and quotas (issue 21): claims share each priority's batch across the tenants with due
# work (off: oldest first, whoever it belongs to). Plans name limits (weight, api_requests_per_minute,
# max_bulk_size, daily_messages per channel); a TenantQuota row picks a tenant's plan and overrides fields.
COMMS_TENANT_FAIRNESS = env.bool("COMMS_TENANT_FAIRNESS", default=True)
COMMS_TENANT_PLANS = env.json("COMMS_TENANT_PLANS", default={"default": {}})
COMMS_TENANT_DEFAULT_PLAN = env.str("COMMS_TENANT_DEFAULT_PLAN", default="default")
COMMS_TENANT_QUOTA_CACHE_SECONDS = env.float("COMMS_TENANT_QUOTA_CACHE_SECONDS", default=10.0)
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [*REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"],
                                              "comms.quotas.TenantQuotaThrottle"]
# --- many nodes (issue 21) ---------------------------------------------------------------------------
# Every node may run beat: only the holder of a Redis lease sends scheduled tasks (comms/beat.py); a
# dead holder is replaced within this many seconds.
CELERY_BEAT_SCHEDULER = "comms.beat:LeaderScheduler"
COMMS_BEAT_LOCK_SECONDS = env.float("COMMS_BEAT_LOCK_SECONDS", default=30.0)
# Retention and archival (comms.retention; docs/operations.md, "Retention"). Periods are per kind and
# tenant in the admin (Comms kernel → Retention policies); these are how the daily run removes rows.
COMMS_RETENTION_BATCH = env.int("COMMS_RETENTION_BATCH", default=5000)
COMMS_RETENTION_PAUSE_SECONDS = env.float("COMMS_RETENTION_PAUSE_SECONDS", default=0.05)
# Archive before removal to S3-compatible storage when a bucket is named (credentials: the usual
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an instance role).
COMMS_ARCHIVE_BUCKET = env.str("COMMS_ARCHIVE_BUCKET", default="")
COMMS_ARCHIVE_PREFIX = env.str("COMMS_ARCHIVE_PREFIX", default="comms-archive")
COMMS_ARCHIVE_ENDPOINT_URL = env.str("COMMS_ARCHIVE_ENDPOINT_URL", default="")
COMMS_ARCHIVE_REGION = env.str("COMMS_ARCHIVE_REGION", default="")
CELERY_BEAT_SCHEDULE["comms-retention-daily"] = {
    "task": "comms.tasks.retention_daily",
    "schedule": env.float("COMMS_RETENTION_EVERY_SECONDS", default=86400.0),
    "options": {"queue": "p4", "expires": 3600},
}
# Staged template rollouts (issue 20, templates_app/rollout.py): the beat steps scheduled rollouts and
# rolls one back when the new version's rates pass a guardrail (README: "Staged rollouts"). Tracking sits
# above templates_app, so the per-version figures are named here, not imported.
COMMS_ROLLOUT_TICK_SECONDS = env.float("COMMS_ROLLOUT_TICK_SECONDS", default=60.0)
COMMS_ROLLOUT_MIN_VOLUME = env.int("COMMS_ROLLOUT_MIN_VOLUME", default=200)
# Per metric (bounce = hard bounces, complaint, unsubscribe, render_error), all in percent: the new version
# breaches when its rate passes max_pct, or when it passes max_ratio × the old version's rate AND is at
# least min_delta_pct points above it (the old version then needs min_volume sends too).
COMMS_ROLLOUT_GUARDRAILS = env.json("COMMS_ROLLOUT_GUARDRAILS", default={
    "bounce": {"max_pct": 5.0, "max_ratio": 2.0, "min_delta_pct": 1.0},
    "complaint": {"max_pct": 0.3, "max_ratio": 2.0, "min_delta_pct": 0.1},
    "unsubscribe": {"max_pct": 2.0, "max_ratio": 2.0, "min_delta_pct": 0.5},
    "render_error": {"max_pct": 1.0, "max_ratio": 2.0, "min_delta_pct": 0.5},
})
COMMS_ROLLOUT_METRICS = "tracking.services.alerts.version_rates"
CELERY_BEAT_SCHEDULE["templates-rollouts-tick"] = {
    "task": "templates_app.tasks.rollouts_tick", "schedule": COMMS_ROLLOUT_TICK_SECONDS,
    "options": {"queue": "p2", "expires": 120},
}

# Content assistants (issue 22 item 7): an OpenAI-compatible chat-completions endpoint (OpenAI, or a local
# llama.cpp/Ollama/vLLM server). Empty base URL or model: the assistant is off (COMMS_ASSISTANT_OFF). Loopback
# is allowed (the operator chose it); other private networks only with COMMS_LLM_ALLOW_PRIVATE.
COMMS_LLM_BASE_URL = env.str("COMMS_LLM_BASE_URL", default="")
COMMS_LLM_MODEL = env.str("COMMS_LLM_MODEL", default="")
COMMS_LLM_API_KEY = env.str("COMMS_LLM_API_KEY", default="")
COMMS_LLM_TIMEOUT = env.float("COMMS_LLM_TIMEOUT", default=20.0)
COMMS_LLM_ALLOW_PRIVATE = env.bool("COMMS_LLM_ALLOW_PRIVATE", default=False)
# Analytics and compliance reports (issue 22, admin_console/analytics.py): the longest period a report covers.
COMMS_ANALYTICS_MAX_DAYS = env.int("COMMS_ANALYTICS_MAX_DAYS", default=400)
# Days of the outcome aggregate (delivery_outcomeday: latency histograms, failures by code) kept for the
# performance report; the stats rollup drops older ones. Default: as long as the longest report period.
COMMS_OUTCOME_STATS_RETENTION_DAYS = env.int("COMMS_OUTCOME_STATS_RETENTION_DAYS", default=400)
# Days of the engagement aggregate (tracking_engagementday: opens/clicks per day) the engagement report reads.
COMMS_ENGAGEMENT_STATS_RETENTION_DAYS = env.int("COMMS_ENGAGEMENT_STATS_RETENTION_DAYS", default=400)
# --- insight: anomaly detection, engagement scores, channel recommendation (issue 22, items 5-6) ----------
# Beat judges the last finished hour of every watched series this often (each series once per hour).
CELERY_BEAT_SCHEDULE["insight-anomaly-tick"] = {
    "task": "admin_console.tasks.anomaly_tick",
    "schedule": env.float("COMMS_ANOMALY_TICK_SECONDS", default=300.0),
    "options": {"queue": "p4", "expires": 240},
}
# Engagement scores per recipient (tracking.scores): the history looked at, the recency half-life.
COMMS_ENGAGEMENT_WINDOW_DAYS = env.int("COMMS_ENGAGEMENT_WINDOW_DAYS", default=180)
COMMS_ENGAGEMENT_HALF_LIFE_DAYS = env.float("COMMS_ENGAGEMENT_HALF_LIFE_DAYS", default=30.0)
CELERY_BEAT_SCHEDULE["insight-engagement-refresh"] = {
    "task": "tracking.tasks.engagement_refresh",
    "schedule": env.float("COMMS_ENGAGEMENT_REFRESH_SECONDS", default=86400.0),
    "options": {"queue": "p4", "expires": 3600},
}
# Cost tracking (issue 22): the SMS spend anomaly is judged per hour by the anomaly tick
# (series sms_spend:<tenant>:<currency>, docs/insight.md); it has no beat entry of its own.
