"""Settings, part 3: templates, inbound webhooks and tracking, the console, the router, preferences,
conversations and journeys."""

from __future__ import annotations

from .base import CELERY_BEAT_SCHEDULE, VAR_DIR, env

# --- templates -------------------------------------------------------------------------------------------
# Activation checks that <img> sources resolve (EC-COM-003); off for air-gapped installs.
COMMS_ASSET_CHECK = env.bool("COMMS_ASSET_CHECK", default=True)
COMMS_ASSET_CHECK_TIMEOUT = env.float("COMMS_ASSET_CHECK_TIMEOUT", default=3.0)
# Rendered artifacts are written once per message: filesystem under var/ by default, S3 when a bucket
# is configured (django-storages on boto3; credentials from the usual AWS environment/instance role).
_artifact_bucket = env.str("COMMS_ARTIFACT_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(VAR_DIR / "media")}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": (
        {"BACKEND": "storages.backends.s3.S3Storage",
         "OPTIONS": {"bucket_name": _artifact_bucket, "file_overwrite": False,
                     "endpoint_url": env.str("COMMS_ARTIFACT_S3_ENDPOINT", default="") or None,
                     "region_name": env.str("AWS_REGION", default="") or None}}
        if _artifact_bucket else
        {"BACKEND": "django.core.files.storage.FileSystemStorage",
         "OPTIONS": {"location": str(VAR_DIR / "artifacts"), "file_permissions_mode": 0o440}}
    ),
}

# --- inbound provider webhooks and tracking (issue 6) ------------------------------------------------
# Requests per provider endpoint (Redis fixed window, shared by all web processes); beyond: 429 +
# Retry-After, which every provider retries. JSON object {"sendgrid": "3000/s", ...}; "default" for the rest.
COMMS_WEBHOOK_RATES = {"default": "60000/min", **env.json("COMMS_WEBHOOK_RATES", default={})}
# Body size cap (bytes): "default", or per provider name to override the provider class's own cap
# (max_body_bytes in webhooks/providers/: SendGrid 8 MB, SES 300 KB, Twilio and push 64 KB).
COMMS_WEBHOOK_MAX_BYTES = {"default": 1024 * 1024, **env.json("COMMS_WEBHOOK_MAX_BYTES", default={})}
# Signed timestamps further than this from our clock are refused (replays, forgeries).
COMMS_WEBHOOK_MAX_SKEW_SECONDS = env.int("COMMS_WEBHOOK_MAX_SKEW_SECONDS", default=600)
# Events for messages not yet marked sent are retried this many times (delays in seconds), then kept as orphans.
COMMS_WEBHOOK_ORPHAN_RETRIES = env.int("COMMS_WEBHOOK_ORPHAN_RETRIES", default=5)
COMMS_WEBHOOK_SWEEP_GRACE_SECONDS = env.int("COMMS_WEBHOOK_SWEEP_GRACE_SECONDS", default=60)
# Stored webhooks are applied in batches of up to this many events (rows are claimed until their events
# reach it); one transaction per batch (issue 21).
COMMS_WEBHOOK_BATCH_SIZE = env.int("COMMS_WEBHOOK_BATCH_SIZE", default=500)
COMMS_WEBHOOK_ORPHAN_BACKOFF = env.list("COMMS_WEBHOOK_ORPHAN_BACKOFF", cast=int, default=[10, 30, 120, 600, 1800])
# Behind a TLS-terminating proxy: trust X-Forwarded-Proto/-Host/-For from it (Twilio signs the public URL),
# or name the public base URL outright.
COMMS_TRUST_FORWARDED = env.bool("COMMS_TRUST_FORWARDED", default=False)
COMMS_WEBHOOK_BASE_URL = env.str("COMMS_WEBHOOK_BASE_URL", default="")
# Provider secrets. SendGrid: the Signed Event Webhook public key (base64 DER, as SendGrid shows it).
COMMS_SENDGRID_VERIFICATION_KEY = env.str("COMMS_SENDGRID_VERIFICATION_KEY", default="")
COMMS_MAILGUN_SIGNING_KEY = env.str("COMMS_MAILGUN_SIGNING_KEY", default="")
COMMS_POSTMARK_WEBHOOK_AUTH = env.str("COMMS_POSTMARK_WEBHOOK_AUTH", default="")  # "user:password"
COMMS_PUSH_FEEDBACK_SECRET = env.str("COMMS_PUSH_FEEDBACK_SECRET", default="")  # "whsec_..."
# Postal: the server's webhook public key as Postal shows it (base64, the DKIM-style "p=" value; several
# separated by commas while rotating). Bandwidth: the callback basic auth set on the application
# ("user:password"). Vonage: the account's signature secret and method (signed DLRs and inbound SMS).
COMMS_POSTAL_WEBHOOK_KEYS = env.list("COMMS_POSTAL_WEBHOOK_KEYS", default=[])
COMMS_BANDWIDTH_WEBHOOK_AUTH = env.str("COMMS_BANDWIDTH_WEBHOOK_AUTH", default="")
COMMS_VONAGE_SIGNATURE_SECRET = env.str("COMMS_VONAGE_SIGNATURE_SECRET",
                                        default=env.str("VONAGE_SIGNATURE_SECRET", default=""))
COMMS_VONAGE_SIGNATURE_METHOD = env.str("COMMS_VONAGE_SIGNATURE_METHOD",
                                        default=env.str("VONAGE_SIGNATURE_METHOD", default="md5hash"))
# Amazon SES via SNS: allowed topics, the host a certificate/SubscribeURL must be on, message age limit.
COMMS_SES_TOPIC_ARNS = env.list("COMMS_SES_TOPIC_ARNS", default=[])
COMMS_SES_WEBHOOK_AUTH = env.str("COMMS_SES_WEBHOOK_AUTH", default="")  # optional basic auth "user:password"
COMMS_SNS_HOST_PATTERN = env.str("COMMS_SNS_HOST_PATTERN",
                                 default=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")
COMMS_SNS_MAX_AGE_SECONDS = env.int("COMMS_SNS_MAX_AGE_SECONDS", default=3600)
COMMS_SNS_CERT_TIMEOUT = env.float("COMMS_SNS_CERT_TIMEOUT", default=5.0)
# Soft bounces: this many within the window suppress the address for a while.
COMMS_SOFT_BOUNCE_LIMIT = env.int("COMMS_SOFT_BOUNCE_LIMIT", default=3)
COMMS_SOFT_BOUNCE_WINDOW_HOURS = env.int("COMMS_SOFT_BOUNCE_WINDOW_HOURS", default=72)
COMMS_SOFT_BOUNCE_SUPPRESS_HOURS = env.int("COMMS_SOFT_BOUNCE_SUPPRESS_HOURS", default=7 * 24)
# Click/open tracking (links built on COMMS_PUBLIC_URL above): token lifetime, where it is off.
COMMS_TRACKING_ENABLED = env.bool("COMMS_TRACKING_ENABLED", default=True)
COMMS_TRACKING_SECRET = env.str("COMMS_TRACKING_SECRET", default="")
COMMS_TRACKING_TOKEN_DAYS = env.int("COMMS_TRACKING_TOKEN_DAYS", default=90)
COMMS_TRACKING_SENSITIVE_CATEGORIES = env.list("COMMS_TRACKING_SENSITIVE_CATEGORIES", default=["security", "legal"])
COMMS_TRACKING_OFF_TEMPLATES = env.list("COMMS_TRACKING_OFF_TEMPLATES", default=[])
# The engine's link tracker for email HTML (tracking sits above delivery: named here, not imported).
COMMS_LINK_TRACKER = "tracking.links.Tracker"
# What preferences (below delivery) needs of delivery, named here rather than imported: the address an
# unsubscribe link's message went to, and the pipeline's send for its double opt-in confirmations.
COMMS_MESSAGE_ADDRESS_SELECTOR = "delivery.selectors.message_address"
COMMS_SYSTEM_EMAIL_SENDER = "delivery.services.enqueue.system_email_enqueue"
# Rolling 7-day deliverability guardrails (percent) and the volume below which no alert is raised.
COMMS_ALERT_HARD_BOUNCE_PCT = env.float("COMMS_ALERT_HARD_BOUNCE_PCT", default=0.3)
COMMS_ALERT_COMPLAINT_PCT = env.float("COMMS_ALERT_COMPLAINT_PCT", default=0.1)
COMMS_ALERT_MIN_SENT = env.int("COMMS_ALERT_MIN_SENT", default=200)
COMMS_ALERT_WEBHOOK_URL = env.str("COMMS_ALERT_WEBHOOK_URL", default="")
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.sweep", "schedule": env.float("COMMS_WEBHOOK_SWEEP_SECONDS", default=15.0),
    "options": {"queue": "p2", "expires": 60},
}
CELERY_BEAT_SCHEDULE["tracking-periodic"] = {
    "task": "webhooks.tasks.tracking_periodic", "schedule": env.float("COMMS_TRACKING_PERIODIC_SECONDS", default=300.0),
    "options": {"queue": "p3", "expires": 600},
}
# --- console, dashboards and metrics (admin_console) ---------------------------------------------------
# Beat folds the dashboard aggregates' deltas this often; buckets older than the retention are dropped.
COMMS_STATS_ROLLUP_SECONDS = env.float("COMMS_STATS_ROLLUP_SECONDS", default=10.0)
COMMS_STATS_RETENTION_DAYS = env.int("COMMS_STATS_RETENTION_DAYS", default=35)
CELERY_BEAT_SCHEDULE["console-stats-rollup"] = {
    "task": "admin_console.tasks.stats_rollup",
    "schedule": COMMS_STATS_ROLLUP_SECONDS,
    "options": {"queue": "p0", "expires": 60},
}
COMMS_DASHBOARD_REFRESH_SECONDS = env.int("COMMS_DASHBOARD_REFRESH_SECONDS", default=30)
# Admin test sends go only to these addresses (exact, or "@example.com" for a whole domain).
COMMS_TEST_SEND_ALLOWLIST = env.list("COMMS_TEST_SEND_ALLOWLIST", default=[])
# /metrics answers only with `Authorization: Bearer <token>` when this is set.
COMMS_METRICS_TOKEN = env.str("COMMS_METRICS_TOKEN", default="")
# Celery workers write a heartbeat to Redis this often; /readyz and the dashboard count live ones.
COMMS_WORKER_HEARTBEAT_SECONDS = env.float("COMMS_WORKER_HEARTBEAT_SECONDS", default=10.0)
# --- router: events, digests, escalations, campaigns, schedules (issue 8) ----------------------------
COMMS_DIGEST_TEMPLATE = env.str("COMMS_DIGEST_TEMPLATE", default="digest")
COMMS_CAMPAIGN_CHUNK = env.int("COMMS_CAMPAIGN_CHUNK", default=10_000)
# Threads writing a campaign's chunks in parallel, each on its own database connection.
COMMS_CAMPAIGN_FANOUT_WRITERS = env.int("COMMS_CAMPAIGN_FANOUT_WRITERS", default=2)
CELERY_BEAT_SCHEDULE["comms-router-tick"] = {
    # Fires due schedules, flushes due digests, escalates unread in-app items, starts and finishes campaigns.
    "task": "comms.tasks.router_tick",
    "schedule": env.float("COMMS_ROUTER_TICK_SECONDS", default=10.0),
    "options": {"queue": "p1", "expires": 60},
}
# Preferences, consent and compliance (issue 5).
COMMS_HASH_KEY = env.str("COMMS_HASH_KEY", default="")
COMMS_QUIET_HOURS_JITTER = env.float("COMMS_QUIET_HOURS_JITTER", default=600.0)
COMMS_PREFERENCE_TOKEN_DAYS = env.int("COMMS_PREFERENCE_TOKEN_DAYS", default=180)
COMMS_PUBLIC_RATE = env.str("COMMS_PUBLIC_RATE", default="120/min")
COMMS_SMS_HELP_TEXT = env.str("COMMS_SMS_HELP_TEXT", default="comms: for help visit {url} or reply STOP to opt out. "
                                                              "Msg&data rates may apply.")
COMMS_SMS_STOP_TEXT = env.str("COMMS_SMS_STOP_TEXT", default="You are unsubscribed and will receive no more messages. "
                                                              "Reply START to resubscribe.")
COMMS_SMS_START_TEXT = env.str("COMMS_SMS_START_TEXT", default="You are resubscribed. Reply HELP for help, "
                                                                "STOP to opt out.")
COMMS_DOUBLE_OPT_IN_REMIND_HOURS = env.int("COMMS_DOUBLE_OPT_IN_REMIND_HOURS", default=48)
COMMS_DOUBLE_OPT_IN_MAX_REMINDERS = env.int("COMMS_DOUBLE_OPT_IN_MAX_REMINDERS", default=1)
COMMS_DOUBLE_OPT_IN_EXPIRE_DAYS = env.int("COMMS_DOUBLE_OPT_IN_EXPIRE_DAYS", default=7)
LANGUAGES = [("en", "English"), ("es", "Español"), ("fr", "Français")]
CELERY_BEAT_SCHEDULE["preferences-double-opt-in"] = {
    "task": "preferences.tasks.double_opt_in_sweep",
    "schedule": env.float("COMMS_DOUBLE_OPT_IN_SWEEP_SECONDS", default=3600.0),
    "options": {"queue": "p3", "expires": 600},
}
# The send-time gate hands rows whose recipient wants daily/weekly digests to the router's collector.
COMMS_DIGEST_HANDLER = env.str("COMMS_DIGEST_HANDLER", default="comms.router.digests.digest_handler")
# An event audience larger than this goes out through the COPY bulk path (one template, first channel).
COMMS_EVENT_BULK_THRESHOLD = env.int("COMMS_EVENT_BULK_THRESHOLD", default=1000)
# Conversations across channels, attachments, offline digests (issue 17, branch i17-channels).
# Inbound person-to-person messages (SMS replies, email replies) are handed up to this callable.
COMMS_INBOUND_MESSAGE_HANDLER = env.str("COMMS_INBOUND_MESSAGE_HANDLER",
                                        default="comms.conversations.inbound.inbound_message_receive")
COMMS_INBOUND_EMAIL_DOMAIN = env.str("COMMS_INBOUND_EMAIL_DOMAIN", default="reply.comms.localhost")
# An inbound message from an address in no open conversation: "support" opens a support conversation
# for the sender; "drop" records it (audit log + the webhook row's note) and keeps nothing else.
COMMS_CONVERSATIONS_UNKNOWN_SENDER = env.str("COMMS_CONVERSATIONS_UNKNOWN_SENDER", default="support")
COMMS_CONVERSATIONS_CATEGORY = env.str("COMMS_CONVERSATIONS_CATEGORY", default="messages")
COMMS_CONVERSATIONS_PRIORITY = env.int("COMMS_CONVERSATIONS_PRIORITY", default=1)
COMMS_SENDGRID_INBOUND_AUTH = env.str("COMMS_SENDGRID_INBOUND_AUTH", default="")  # "user:password"
COMMS_POSTMARK_INBOUND_AUTH = env.str("COMMS_POSTMARK_INBOUND_AUTH", default="")  # "user:password"
COMMS_OFFLINE_DIGEST_MINUTES = env.int("COMMS_OFFLINE_DIGEST_MINUTES", default=15)
COMMS_OFFLINE_AFTER_MINUTES = env.int("COMMS_OFFLINE_AFTER_MINUTES", default=5)
# Optional dotted path of callable(participant=) -> bool: is the participant connected (WebSocket presence)?
COMMS_CONVERSATIONS_PRESENCE = env.str("COMMS_CONVERSATIONS_PRESENCE",
                                       default="comms.conversations.presence.participant_online")
COMMS_ATTACHMENT_MAX_BYTES = env.int("COMMS_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
COMMS_ATTACHMENT_TYPES = env.list("COMMS_ATTACHMENT_TYPES", default=[
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"])
COMMS_ATTACHMENT_LINK_SECONDS = env.int("COMMS_ATTACHMENT_LINK_SECONDS", default=300)
# Attachment bytes: filesystem under var/attachments by default, S3 when a bucket is configured.
_attachment_bucket = env.str("COMMS_ATTACHMENT_BUCKET", default="")
STORAGES["attachments"] = (
    {"BACKEND": "storages.backends.s3.S3Storage",
     "OPTIONS": {"bucket_name": _attachment_bucket, "file_overwrite": False, "default_acl": "private",
                 "querystring_auth": True,
                 "endpoint_url": env.str("COMMS_ATTACHMENT_S3_ENDPOINT", default="") or None,
                 "region_name": env.str("AWS_REGION", default="") or None}}
    if _attachment_bucket else
    {"BACKEND": "django.core.files.storage.FileSystemStorage",
     "OPTIONS": {"location": str(VAR_DIR / "attachments"), "file_permissions_mode": 0o640}}
)
COMMS_ATTACHMENT_STORAGE = env.str("COMMS_ATTACHMENT_STORAGE", default="attachments")  # a STORAGES alias
COMMS_ATTACHMENT_THUMBNAIL_PX = env.int("COMMS_ATTACHMENT_THUMBNAIL_PX", default=320)
CELERY_BEAT_SCHEDULE["conversations-channels-tick"] = {
    # Delivered receipts from outbound SMS/email statuses, and offline email digests.
    "task": "comms.conversations.tasks.channels_tick",
    "schedule": env.float("COMMS_CONVERSATIONS_TICK_SECONDS", default=30.0),
    "options": {"queue": "p2", "expires": 120},
}
# Journeys (issue 16): a claimed run's lease (a killed worker's runs come back after it), and how long one
# router tick keeps advancing due runs before it yields.
COMMS_JOURNEY_LEASE_SECONDS = env.int("COMMS_JOURNEY_LEASE_SECONDS", default=60)
COMMS_JOURNEY_TICK_SECONDS = env.float("COMMS_JOURNEY_TICK_SECONDS", default=5.0)
