"""Settings for comms, grouped by concern and read through django-environ.

Every knob is an environment variable; README.md lists them all. Without
``DATABASE_URL`` / ``REDIS_URL`` the process uses the embedded servers that
``manage.py comms_up`` started and recorded in ``var/embedded.env``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("COMMS_VAR_DIR", default=str(BASE_DIR / "var")))
# The embedded servers write their URLs here so `manage.py shell` etc. find them.
EMBEDDED_ENV_FILE = VAR_DIR / "embedded.env"
if EMBEDDED_ENV_FILE.exists():
    environ.Env.read_env(str(EMBEDDED_ENV_FILE), overwrite=False)


def _secret_key() -> str:
    """Explicit SECRET_KEY wins; otherwise a key generated once and kept under var/."""
    if value := env.str("SECRET_KEY", default=""):
        return value
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# --- core -------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
COMMS_PUBLIC_URL = env.str("COMMS_PUBLIC_URL", default="http://127.0.0.1:8000")
# Behind TLS (directly or via a proxy that sets X-Forwarded-Proto): secure cookies and HSTS.
if env.bool("COMMS_HTTPS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("COMMS_HSTS_SECONDS", default=31536000)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production hardening under TLS (`manage.py check --deploy` is clean with COMMS_HTTPS=true).
if env.bool("COMMS_HTTPS", default=False):
    SECURE_SSL_REDIRECT = env.bool("COMMS_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load-balancer probes speak plain HTTP
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("COMMS_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("COMMS_HSTS_PRELOAD", default=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("COMMS_SESSION_SECONDS", default=8 * 3600)  # an admin session lasts a work day
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "admin_console.apps.ConsoleAdminConfig",  # django.contrib.admin, its site from admin_console/site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Redoc/Swagger UI as our own static files (no CDN, works under the CSP)
    "comms",
    "templates_app",
    "delivery",
    "preferences",
    "tracking",
    "webhooks",
    # The kernel's upper packages: their own apps, above the ones they call down into.
    "comms.campaigns",
    "comms.router",
    "comms.conversations",
    "comms.devserver",  # `make run`'s servers; an app so `manage.py smtp_sink` is found
    "admin_console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Security headers (CSP on HTML pages) and the API input guard (see comms/security.py).
MIDDLEWARE += ["comms.security.SecurityHeaders", "comms.security.ApiInputGuard"]
COMMS_CSP = env.str("COMMS_CSP", default="") or None

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Site-wide admin templates (admin/base_site.html) must come before django.contrib.admin's own.
        "DIRS": [BASE_DIR / "admin_console" / "site_templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Bulk sends carry up to 100,000 recipients in one JSON body (~10 MB); anything larger is refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("COMMS_MAX_REQUEST_BYTES", default=32 * 1024 * 1024)
# Deepest JSON nesting accepted anywhere (API, provider webhooks, admin JSON fields): deeper is a
# RecursionError in the parser and in everything that walks the result (comms/jsonlimits.py).
COMMS_JSON_MAX_DEPTH = env.int("COMMS_JSON_MAX_DEPTH", default=100)

# --- data stores -----------------------------------------------------------------------------------
if not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured(
        "DATABASE_URL is not set and no embedded server is running: start one with `make run` "
        "(or `manage.py comms_up`), or point DATABASE_URL at PostgreSQL."
    )
DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
# Off by default: the check is an extra round trip per request; a broken connection is still
# discarded after the request that found it broken.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("application_name", env.str("COMMS_PROCESS_NAME", default="comms"))
DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default="test_comms")}
# DATABASE_POOLER=transaction: DATABASE_URL is PgBouncer in transaction pooling mode, where a client
# holds a server connection for one transaction only, so no session state may span two: no
# server-side prepared statements (psycopg's prepare_threshold) and no WITH HOLD cursors
# (QuerySet.iterator()). comms itself keeps none (docs/operations.md, "Many nodes behind PgBouncer").
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "session", "transaction"):
    raise ImproperlyConfigured(f"DATABASE_POOLER must be empty, 'session' or 'transaction', not {DATABASE_POOLER!r}")
if DATABASE_POOLER == "transaction":
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# DATABASE_REPLICA_URL: a streaming replica (or its pooler) for the console's dashboard and stats
# reads (admin_console.stats), which may lag the primary by the replication delay. Nothing else
# reads there: the queue, the API and every write stay on the primary.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
COMMS_STATS_DATABASE = "default"
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {**env.db_url_config(DATABASE_REPLICA_URL), "TEST": {"MIRROR": "default"},
                            "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"]}
    DATABASES["replica"].setdefault("OPTIONS", {}).update(
        {k: v for k, v in DATABASES["default"]["OPTIONS"].items() if k in ("application_name", "prepare_threshold")})
    DATABASES["replica"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False)
    COMMS_STATS_DATABASE = "replica"

REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set and no embedded Redis is running (see `make run`).")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "comms",
    }
}

# --- API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["comms.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["comms.auth.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["comms.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["comms.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("COMMS_API_RATE", default="60000/min")},
    "EXCEPTION_HANDLER": "comms.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "comms API",
    "DESCRIPTION": "One API for email, SMS, push, in-app and webhook messages.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
# Typed error responses on every operation; request bodies closed to unknown fields (see comms/schema.py).
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums", "comms.schema.add_error_responses",
]
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "ChannelEnum": "comms.enums.Channel",
    # Subsets: channels a person has preferences for, and channels whose address can be suppressed.
    "PreferenceChannelEnum": ["email", "sms", "push", "in_app", "voice"],
    "SuppressibleChannelEnum": ["email", "sms", "push", "voice"],
}
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "comms.schema.AutoSchema"  # unique operation ids

# --- Celery: one queue per priority, P0/P1 get their own worker pool -------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "p2"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    # Beat is the safety net: it promotes due scheduled/deferred rows, returns expired leases to
    # the queue and re-sends wake-ups for any due row, so a lost Redis loses no message.
    "delivery-housekeeping": {
        "task": "delivery.tasks.housekeeping",
        "schedule": env.float("COMMS_HOUSEKEEPING_SECONDS", default=5.0),
        "options": {"queue": "p0", "expires": 30},
    },
}

# --- delivery engine -------------------------------------------------------------------------------
COMMS_LEASE_SECONDS = env.int("COMMS_LEASE_SECONDS", default=120)
COMMS_DRAIN_SECONDS = env.float("COMMS_DRAIN_SECONDS", default=20.0)
# Provider calls in flight per worker process (sending threads), and per provider within that, so one
# slow provider holds at most its own slots (delivery.services.inflight). 1 = the serial engine.
COMMS_SEND_CONCURRENCY = env.int("COMMS_SEND_CONCURRENCY", default=128)
COMMS_PROVIDER_CONCURRENCY = env.int("COMMS_PROVIDER_CONCURRENCY", default=64)
# A row that was being sent when its worker died waits this long before its next try (it may be the
# message that kills the worker); the rows the worker never reached go back at once.
COMMS_CRASH_BACKOFF_SECONDS = env.float("COMMS_CRASH_BACKOFF_SECONDS", default=10.0)
COMMS_BULK_MAX_RECIPIENTS = env.int("COMMS_BULK_MAX_RECIPIENTS", default=100_000)
_default_backoff = env.list("COMMS_RETRY_BACKOFF", cast=int, default=[60, 300, 1800, 7200])
# Per priority: claim batch size, retry schedule (seconds between attempts; its length is the retry
# budget) and the age after which no further retry is scheduled (the row goes to the DLQ instead).
COMMS_PRIORITIES = {
    0: {"name": "emergency", "batch": env.int("COMMS_P0_BATCH", default=10),
        "backoff": env.list("COMMS_P0_RETRY_BACKOFF", cast=int, default=[10, 30, 60, 120, 300]),
        "max_age": env.int("COMMS_P0_MAX_AGE", default=900)},
    1: {"name": "high", "batch": env.int("COMMS_P1_BATCH", default=50), "backoff": _default_backoff,
        "max_age": env.int("COMMS_P1_MAX_AGE", default=6 * 3600)},
    2: {"name": "normal", "batch": env.int("COMMS_P2_BATCH", default=200), "backoff": _default_backoff,
        "max_age": env.int("COMMS_P2_MAX_AGE", default=24 * 3600)},
    3: {"name": "low", "batch": env.int("COMMS_P3_BATCH", default=200), "backoff": _default_backoff,
        "max_age": env.int("COMMS_P3_MAX_AGE", default=24 * 3600)},
    4: {"name": "lowest", "batch": env.int("COMMS_P4_BATCH", default=100), "backoff": _default_backoff,
        "max_age": env.int("COMMS_P4_MAX_AGE", default=24 * 3600)},
}
# Which provider class serves each channel (dotted paths); ChannelProvider rows override per tenant.
COMMS_CHANNEL_PROVIDERS = {
    "email": env.str("COMMS_EMAIL_PROVIDER", default="delivery.providers.smtp.SmtpProvider"),
    "webhook": env.str("COMMS_WEBHOOK_PROVIDER", default="delivery.providers.webhook.WebhookProvider"),
    "in_app": "delivery.providers.in_app.InAppProvider",
}
# End-user inbox tokens (minted by the calling app through the API) live this long.
COMMS_INBOX_TOKEN_SECONDS = env.int("COMMS_INBOX_TOKEN_SECONDS", default=24 * 3600)
COMMS_INBOX_RATE = env.str("COMMS_INBOX_RATE", default="600/min")
COMMS_INBOX_STREAM_SECONDS = env.int("COMMS_INBOX_STREAM_SECONDS", default=300)
# Public endpoints (unsubscribe, preferences, click/open, inbound webhooks, inbox): requests per client
# address and scope (COMMS_PUBLIC_RATE, below with the preference pages); COMMS_PUBLIC_RATES overrides per
# scope (JSON). See comms/throttles.py.
COMMS_PUBLIC_RATES = env.json("COMMS_PUBLIC_RATES", default={"webhooks": "6000/min", "click": "600/min",
                                                            "open": "600/min"})
# Credential guessing: this many failed API key / token checks from one address within the window
# lock the address out until the window ends (logged once on logger comms.security).
COMMS_AUTH_FAILURE_LIMIT = env.int("COMMS_AUTH_FAILURE_LIMIT", default=30)
COMMS_AUTH_LOCKOUT_SECONDS = env.int("COMMS_AUTH_LOCKOUT_SECONDS", default=300)
# SMS is served when Twilio is configured (or a ChannelProvider row exists).
COMMS_TWILIO = {
    "account_sid": env.str("TWILIO_ACCOUNT_SID", default=""),
    "auth_token": env.str("TWILIO_AUTH_TOKEN", default=""),
    "from_number": env.str("TWILIO_FROM_NUMBER", default=""),
    "messaging_service_sid": env.str("TWILIO_MESSAGING_SERVICE_SID", default=""),
    "base_url": env.str("TWILIO_BASE_URL", default=""),
    "status_callback": env.str("TWILIO_STATUS_CALLBACK", default=""),  # e.g. https://host/webhooks/twilio/status
}
if COMMS_TWILIO["account_sid"]:
    COMMS_CHANNEL_PROVIDERS["sms"] = "delivery.providers.twilio.TwilioProvider"
# SMS through Amazon SNS: COMMS_SMS_PROVIDER=sns (Twilio stays the default when TWILIO_ACCOUNT_SID is
# set). Credentials come from the AWS chain unless SNS_ACCESS_KEY_ID / SNS_SECRET_ACCESS_KEY are given.
COMMS_SNS = {
    "region_name": env.str("SNS_REGION", default=env.str("AWS_REGION", default="")),
    "endpoint_url": env.str("SNS_ENDPOINT_URL", default=""),
    "aws_access_key_id": env.str("SNS_ACCESS_KEY_ID", default=""),
    "aws_secret_access_key": env.str("SNS_SECRET_ACCESS_KEY", default=""),
    "sender_id": env.str("SNS_SENDER_ID", default=""),
    "origination_number": env.str("SNS_ORIGINATION_NUMBER", default=""),
    "sms_type": env.str("SNS_SMS_TYPE", default="Transactional"),
    "max_price": env.str("SNS_MAX_PRICE", default=""),
    "check_opt_out": env.bool("SNS_CHECK_OPT_OUT", default=False),
}
if env.str("COMMS_SMS_PROVIDER", default="") == "sns":
    COMMS_CHANNEL_PROVIDERS["sms"] = "delivery.providers.sns.SnsProvider"
# SMS through Bandwidth (Messaging API v2) or Vonage (SMS API): COMMS_SMS_PROVIDER=bandwidth|vonage
# (failover chains: COMMS_CHANNEL_FAILOVER below, or ChannelProvider rows). BASE_URL points
# the client elsewhere (the loopback stand-ins of `make run` and the tests).
COMMS_BANDWIDTH = {
    "account_id": env.str("BANDWIDTH_ACCOUNT_ID", default=""),
    "username": env.str("BANDWIDTH_USERNAME", default=""),
    "password": env.str("BANDWIDTH_PASSWORD", default=""),
    "application_id": env.str("BANDWIDTH_APPLICATION_ID", default=""),
    "from_number": env.str("BANDWIDTH_FROM_NUMBER", default=""),
    "base_url": env.str("BANDWIDTH_BASE_URL", default=""),
}
COMMS_VONAGE = {
    "api_key": env.str("VONAGE_API_KEY", default=""),
    "api_secret": env.str("VONAGE_API_SECRET", default=""),
    "signature_secret": env.str("VONAGE_SIGNATURE_SECRET", default=""),
    "signature_method": env.str("VONAGE_SIGNATURE_METHOD", default="md5hash"),
    "from_number": env.str("VONAGE_FROM_NUMBER", default=""),
    "callback": env.str("VONAGE_CALLBACK_URL", default=""),
    "base_url": env.str("VONAGE_BASE_URL", default=""),
}
if env.str("COMMS_SMS_PROVIDER", default="") == "bandwidth":
    COMMS_CHANNEL_PROVIDERS["sms"] = "delivery.providers.bandwidth.BandwidthProvider"
if env.str("COMMS_SMS_PROVIDER", default="") == "vonage":
    COMMS_CHANNEL_PROVIDERS["sms"] = "delivery.providers.vonage.VonageProvider"
# Email through a Postal server's HTTP API (django-anymail's Postal backend): COMMS_EMAIL_PROVIDER=postal
# makes it the email provider (SES or SMTP as its failover: COMMS_CHANNEL_FAILOVER or ChannelProvider rows).
COMMS_POSTAL = {
    "api_url": env.str("POSTAL_API_URL", default=""),
    "api_key": env.str("POSTAL_API_KEY", default=""),
}
if COMMS_CHANNEL_PROVIDERS["email"] == "postal":  # COMMS_EMAIL_PROVIDER=postal
    COMMS_CHANNEL_PROVIDERS["email"] = "delivery.providers.anymail_esp.PostalProvider"
# Failover chains from settings (ChannelProvider rows replace them per tenant): per channel, the provider
# classes tried after the primary, in order, e.g. {"sms": ["delivery.providers.bandwidth.BandwidthProvider",
# "delivery.providers.vonage.VonageProvider"], "email": ["delivery.providers.anymail_esp.PostalProvider"]}.
_FAILOVER_ALIASES = {"bandwidth": "delivery.providers.bandwidth.BandwidthProvider",
                     "vonage": "delivery.providers.vonage.VonageProvider",
                     "postal": "delivery.providers.anymail_esp.PostalProvider",
                     "twilio": "delivery.providers.twilio.TwilioProvider", "sns": "delivery.providers.sns.SnsProvider",
                     "smtp": "delivery.providers.smtp.SmtpProvider"}
COMMS_CHANNEL_FAILOVER = {channel: [_FAILOVER_ALIASES.get(p, p) for p in paths]
                          for channel, paths in env.json("COMMS_CHANNEL_FAILOVER", default={}).items()}
# Push is served when an FCM service account is configured (or a ChannelProvider row exists).
# FCM_ENDPOINT points firebase-admin at another host (the loopback stand-in of `make run`).
COMMS_FCM = {
    "service_account": env.str("FCM_SERVICE_ACCOUNT_JSON", default=""),
    "service_account_file": env.str("FCM_SERVICE_ACCOUNT_FILE", default=""),
    "project_id": env.str("FCM_PROJECT_ID", default=""),
    "endpoint": env.str("FCM_ENDPOINT", default=""),
    "timeout": env.float("FCM_TIMEOUT", default=10.0),
}
if COMMS_FCM["service_account"] or COMMS_FCM["service_account_file"]:
    COMMS_CHANNEL_PROVIDERS["push"] = "delivery.providers.fcm.FcmProvider"


def _push_chain(value: str | list[str] | None) -> list[str]:
    """The push chain so far as a list (a channel's value is one dotted path or a chain of them)."""
    return [value] if isinstance(value, str) else list(value or [])


# Voice calls through Twilio's Calls API on the SMS account (TWILIO_*): served when the account and a
# caller id are set.
# The caller id is TWILIO_VOICE_FROM_NUMBER, else TWILIO_FROM_NUMBER; Twilio calls back on
# TWILIO_VOICE_CALLBACK_BASE (default COMMS_WEBHOOK_BASE_URL, else COMMS_PUBLIC_URL).
COMMS_TWILIO_VOICE = {
    "from_number": env.str("TWILIO_VOICE_FROM_NUMBER", default=""),
    "callback_base": env.str("TWILIO_VOICE_CALLBACK_BASE", default=""),
    "machine_detection": env.str("TWILIO_VOICE_MACHINE_DETECTION", default="DetectMessageEnd"),
    "ring_timeout": env.int("TWILIO_VOICE_RING_SECONDS", default=30),
}
if COMMS_TWILIO["account_sid"] and (COMMS_TWILIO_VOICE["from_number"] or COMMS_TWILIO["from_number"]):
    # (an SMS-only account sending through a messaging service has no caller id: no voice, no start-up error)
    COMMS_CHANNEL_PROVIDERS["voice"] = "delivery.providers.twilio_voice.TwilioVoiceProvider"
# Web Push (RFC 8030/8291/8292) to browser subscriptions: on when WEBPUSH_ENABLED (make run sets it); the
# VAPID pair lives in WEBPUSH_VAPID_FILE (manage.py comms_vapid_keys). With FCM too, push is the chain
# [fcm, webpush]: each vendor sends to its own devices (delivery/channels/push.py).
COMMS_WEBPUSH = {
    "enabled": env.bool("WEBPUSH_ENABLED", default=False),
    "vapid_file": env.str("WEBPUSH_VAPID_FILE", default=str(VAR_DIR / "vapid.json")),
    "subject": env.str("WEBPUSH_VAPID_SUBJECT", default="mailto:ops@example.com"),
    "ca_bundle": env.str("WEBPUSH_CA_BUNDLE", default=""),
    "timeout": env.float("WEBPUSH_TIMEOUT", default=10.0),
}
if COMMS_WEBPUSH["enabled"]:
    COMMS_CHANNEL_PROVIDERS["push"] = [p for p in (*_push_chain(COMMS_CHANNEL_PROVIDERS.get("push")),
                                                   "delivery.providers.webpush.WebPushProvider") if p]
# APNs directly (token-based auth, HTTP/2): served when a key is configured (or a ChannelProvider row
# exists), appended to the push chain like Web Push. Which iOS devices it reaches is COMMS_PUSH_IOS_VIA
# ("fcm" by default: iOS through FCM, as before) or, per tenant slug, COMMS_PUSH_IOS_VIA_TENANTS; Android
# stays on FCM. Each vendor of the chain gets its own devices (delivery/channels/push.py).
COMMS_APNS = {
    "team_id": env.str("APNS_TEAM_ID", default=""),
    "key_id": env.str("APNS_KEY_ID", default=""),
    "private_key": env.str("APNS_PRIVATE_KEY", default=""),
    "private_key_file": env.str("APNS_PRIVATE_KEY_FILE", default=""),
    "topic": env.str("APNS_TOPIC", default=""),
    "endpoint": env.str("APNS_ENDPOINT", default="https://api.push.apple.com"),
    "ca_file": env.str("APNS_CA_FILE", default=""),
    "timeout": env.float("APNS_TIMEOUT", default=10.0),
}
COMMS_PUSH_IOS_VIA = env.str("COMMS_PUSH_IOS_VIA", default="fcm")
COMMS_PUSH_IOS_VIA_TENANTS = env.json("COMMS_PUSH_IOS_VIA_TENANTS", default={})
if COMMS_APNS["key_id"] and (COMMS_APNS["private_key"] or COMMS_APNS["private_key_file"]):
    COMMS_CHANNEL_PROVIDERS["push"] = [p for p in (*_push_chain(COMMS_CHANNEL_PROVIDERS.get("push")),
                                                   "delivery.providers.apns.ApnsProvider") if p]
# Per recipient domain: [messages, per seconds] (seed 003's ISP defaults); JSON to override.
COMMS_DOMAIN_RATE_LIMITS = {k: tuple(v) for k, v in env.json("COMMS_DOMAIN_RATE_LIMITS", default={
    "gmail.com": [10000, 3600], "yahoo.com": [5000, 3600], "hotmail.com": [5000, 3600],
    "outlook.com": [5000, 3600], "aol.com": [3000, 3600]}).items()}
# Messages per second per provider defined in settings (ChannelProvider rows carry their own).
COMMS_PROVIDER_RATE_LIMITS = env.json("COMMS_PROVIDER_RATE_LIMITS", default={})
# Twilio places 1 outbound call per second per account unless the account's CPS was raised.
COMMS_PROVIDER_RATE_LIMITS.setdefault("twilio_voice", env.int("TWILIO_VOICE_CPS", default=1))
# Circuit breaker: this many consecutive transient failures open a provider for the cooldown; then
# one probe message at a time decides whether it closes again.
COMMS_BREAKER_FAILURES = env.int("COMMS_BREAKER_FAILURES", default=5)
COMMS_BREAKER_COOLDOWN = env.float("COMMS_BREAKER_COOLDOWN", default=30.0)
# Beat copies provider health (Redis counters, breaker state) into the ChannelHealth table this often.
COMMS_HEALTH_PERSIST_SECONDS = env.int("COMMS_HEALTH_PERSIST_SECONDS", default=30)
# Outbound webhooks never reach private/loopback/link-local/metadata addresses, except these CIDRs.
COMMS_OUTBOUND_ALLOWED_NETWORKS = env.list("COMMS_OUTBOUND_ALLOWED_NETWORKS", default=[])
COMMS_WEBHOOK_TIMEOUT = env.float("COMMS_WEBHOOK_TIMEOUT", default=10.0)
COMMS_WEBHOOK_SECRET_GRACE_HOURS = env.int("COMMS_WEBHOOK_SECRET_GRACE_HOURS", default=24)

# --- email ---------------------------------------------------------------------------------------------
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=2525)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="comms <no-reply@comms.localhost>")
COMMS_MESSAGE_ID_DOMAIN = env.str("COMMS_MESSAGE_ID_DOMAIN", default="comms.localhost")
COMMS_MAX_EMAIL_BODY_BYTES = env.int("COMMS_MAX_EMAIL_BODY_BYTES", default=1024 * 1024)

# --- logging: secrets never reach a log line (API keys are hashed before anything logs them) --------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},  # one line per wake-up task is noise, not news
        "mail.log": {"level": "WARNING"},  # aiosmtpd's per-connection chatter
        "httpx": {"level": "WARNING"},  # a line per request, with the APNs device token in its URL
    },
}

# --- secrets at rest -----------------------------------------------------------------------------------
# A Fernet key (``Fernet.generate_key()``); empty derives one from SECRET_KEY.
COMMS_ENCRYPTION_KEY = env.str("COMMS_ENCRYPTION_KEY", default="")
# Worker outcome writes skip the WAL flush wait: a killed worker loses nothing (the server has the
# commit), only a PostgreSQL crash can forget the last ~0.6 s of 'sent' marks. Set true to pay an
# fsync per message instead.
COMMS_OUTCOME_SYNC_COMMIT = env.bool("COMMS_OUTCOME_SYNC_COMMIT", default=False)

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
# Hours of the outcome aggregate (delivery_outcomeday: latency histograms, failures by code) kept for the
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
