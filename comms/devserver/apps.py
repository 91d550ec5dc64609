from django.apps import AppConfig


class DevserverConfig(AppConfig):
    name = "comms.devserver"
    label = "devserver"
    verbose_name = "development servers"
