from django.apps import AppConfig

from comms.erasure import Phase, eraser_register  # no models: safe before the registry is ready
from comms.retention_policy import Child, Kind, Pruner, pruner_register

# Retention (comms.retention): a message goes with its delivery logs, only in a terminal status (one
# still scheduled, queued, sending or deferred is never removed, whatever its age), aged by its
# latest event so a message sent long after it was created is kept from when it was sent. Ids are
# uuid7, so the key range below the cutoff is exactly the rows created before it.
MESSAGES_PRUNER = Pruner(
    kind=Kind.MESSAGES, table="delivery_message", key_is_uuid7=True,
    time_sql="greatest(t.created_at, t.sent_at, t.delivered_at, t.failed_at)",
    removable_sql="t.status IN ('sent', 'delivered', 'failed', 'dead', 'bounced', 'complained', 'cancelled', "
                  "'blocked')",
    children=(Child("delivery_deliverylog", "message_id"),),
)
IN_APP_PRUNER = Pruner(kind=Kind.IN_APP, table="delivery_inappnotification", key_is_uuid7=True,
                       time_sql="t.created_at", removable_sql="NOT t.pinned")


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = "Delivery"

    def ready(self) -> None:
        from delivery import checks  # noqa: F401  (registers the provider credential check)
        from delivery.services.erasure import message_data_erase

        # A person's messages are the records other apps' copies hang off: erased first.
        eraser_register(message_data_erase, phase=Phase.RECORDS)
        pruner_register(MESSAGES_PRUNER)
        pruner_register(IN_APP_PRUNER)
