from django.apps import AppConfig


class RouterConfig(AppConfig):
    """The event router: events, routing rules, schedules, digests, escalations (an upper package of comms).

    Its own app so the kernel never imports it: it sits above delivery, templates_app and preferences
    and calls down into them through their services.
    """

    name = "comms.router"
    label = "router"
    verbose_name = "comms router"

    def ready(self) -> None:
        from comms.router.journeys import register_erasers  # app registry must be ready before models import

        register_erasers()
