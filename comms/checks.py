"""System checks: refuse to start on a configuration that would misbehave silently."""

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from comms.provider_settings import settings_providers


@register()
def comms_configuration(app_configs, **kwargs):
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append(Error("comms needs PostgreSQL (SKIP LOCKED claims, COPY fan-out).", id="comms.E001"))
    for priority in range(5):
        policy = settings.COMMS_PRIORITIES.get(priority)
        if not policy or policy["batch"] < 1 or any(int(s) <= 0 for s in policy["backoff"]):
            problems.append(Error(f"COMMS_PRIORITIES[{priority}] needs batch >= 1 and positive backoff seconds.",
                                  id="comms.E002"))
    for channel, path in settings_providers():  # every chain member, failover included
        try:
            import_string(path)
        except ImportError as exc:
            problems.append(Error(f"Provider for '{channel}' cannot be imported: {path} ({exc}).",
                                  id="comms.E003"))
    twilio = settings.COMMS_TWILIO
    if twilio["account_sid"] and not (twilio["auth_token"] and (twilio["from_number"] or twilio["messaging_service_sid"])):
        problems.append(Error("TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN or a sender "
                              "(TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID) is missing.", id="comms.E005"))
    if settings.COMMS_LEASE_SECONDS < 10:
        problems.append(Error("COMMS_LEASE_SECONDS below 10 would re-send slow batches.", id="comms.E004"))
    return problems
