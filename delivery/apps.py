from django.apps import AppConfig

from comms.erasure import Phase, eraser_register  # no models: safe before the registry is ready


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = "Delivery"

    def ready(self) -> None:
        from delivery import checks  # noqa: F401  (registers the provider credential check)
        from delivery.services.erasure import message_data_erase

        # A person's messages are the records other apps' copies hang off: erased first.
        eraser_register(message_data_erase, phase=Phase.RECORDS)
