from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "comms"
    verbose_name = "comms kernel"

    def ready(self) -> None:
        from comms import checks  # noqa: F401  (registers system checks)
        from comms import schema  # noqa: F401  (OpenAPI descriptions of our authenticators)
