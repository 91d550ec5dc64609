"""Settings, part 2: the delivery engine, providers and failover chains, email, logging, secrets."""

from __future__ import annotations

from .base import VAR_DIR, env

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
