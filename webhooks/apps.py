from django.apps import AppConfig

from comms.erasure import eraser_register  # no models: safe before the registry is ready


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks.erasure import erase_webhook_bodies

        eraser_register(erase_webhook_bodies)  # GDPR erasure: this app clears its own copies of a person's data
