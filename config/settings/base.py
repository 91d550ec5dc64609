"""Settings, part 1: the environment, core Django, data stores, the API and Celery.

Without ``DATABASE_URL`` / ``REDIS_URL`` the process uses the embedded servers that
``manage.py comms_up`` started and recorded in ``var/embedded.env``. This part imports no other
part, so it can be evaluated on its own (tests/reliability/test_pgbouncer.py does).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

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
