from django.apps import AppConfig

from comms.erasure import eraser_register  # no models: safe before the registry is ready
from comms.retention_policy import Kind, Pruner, pruner_register

# Retention (comms.retention): tracking events by when we recorded them (the provider's timestamp
# may be skewed); they outlive their message by default (180 d against 90 d) for engagement history.
EVENTS_PRUNER = Pruner(kind=Kind.TRACKING, table="tracking_messageevent", time_sql="t.recorded_at")


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from tracking.services.erasure import erase_tracking_events

        pruner_register(EVENTS_PRUNER)
        eraser_register(erase_tracking_events)  # GDPR erasure: this app clears its own copies of a person's data
