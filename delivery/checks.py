"""Start-up system check: every configured provider has the credentials it needs.

Runs with every management command (``comms_bootstrap``, which ``make run`` and deployments call
first, ``migrate``, ``check``), so a provider without its token fails loudly at start-up instead of
every message failing later. Both the settings' default providers and ``ChannelProvider`` rows are
checked; rows are skipped while the table does not exist yet (a fresh database before migrate).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError
from django.utils.module_loading import import_string

from delivery import routing


def _problems_of(path: str, config: dict) -> list[str]:
    try:
        cls = import_string(path)
    except ImportError as exc:
        return [f"provider class {path} cannot be imported ({exc})"]
    return cls.config_problems(config)


@register()
def provider_credentials(app_configs, **kwargs):
    errors = []
    for channel, path in routing.settings_providers():
        if path.endswith("TwilioProvider"):
            continue  # comms.E005 says it in the settings' own words
        for problem in _problems_of(path, {}):
            errors.append(Error(f"{channel} provider from settings ({path.rsplit('.', 1)[-1]}): {problem}.",
                                hint="Set the provider's environment variables (see README).", id="delivery.E002"))
    from delivery.models import ChannelProvider

    try:
        rows = list(ChannelProvider.objects.exclude(status=ChannelProvider.State.DISABLED))
    except DatabaseError:
        return errors  # not migrated yet
    for row in rows:
        label = f"ChannelProvider '{row.name}' ({row.channel})"
        try:
            config = {**row.options, **row.credentials}
        except ValueError as exc:
            errors.append(Error(f"{label}: credentials cannot be decrypted ({exc}).",
                                hint="COMMS_ENCRYPTION_KEY changed? Re-enter the credentials.", id="delivery.E003"))
            continue
        for problem in _problems_of(row.provider_class, config):
            errors.append(Error(f"{label}: {problem}.", hint="Add it to the row's credentials or options, "
                                "or disable the row.", id="delivery.E002"))
    return errors


@register()
def ios_push_route(app_configs, **kwargs):
    """iOS devices sent to APNs need an APNs provider: without one their pushes wait, unsent."""
    tenants = [slug for slug, via in settings.COMMS_PUSH_IOS_VIA_TENANTS.items() if via == "apns"]
    if settings.COMMS_PUSH_IOS_VIA != "apns" and not tenants:
        return []
    apns = "delivery.providers.apns.ApnsProvider"
    if ("push", apns) in routing.settings_providers():
        return []
    from delivery.models import ChannelProvider

    try:
        if ChannelProvider.objects.filter(provider_class=apns).exclude(status=ChannelProvider.State.DISABLED).exists():
            return []
    except DatabaseError:
        return []  # not migrated yet
    return [Warning("iOS push goes to APNs (COMMS_PUSH_IOS_VIA / COMMS_PUSH_IOS_VIA_TENANTS) but no APNs provider "
                    "is configured: pushes to iOS devices will wait as COMMS_CHANNEL_UNAVAILABLE.",
                    hint="Set APNS_TEAM_ID, APNS_KEY_ID, APNS_PRIVATE_KEY_FILE and APNS_TOPIC, or add an APNs "
                         "ChannelProvider row.", id="delivery.W001")]
