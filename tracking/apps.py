from django.apps import AppConfig

from comms.erasure import eraser_register  # no models: safe before the registry is ready


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from tracking.services.erasure import erase_tracking_events

        eraser_register(erase_tracking_events)  # GDPR erasure: this app clears its own copies of a person's data
