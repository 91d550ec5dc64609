from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps  # the module, so its AdminConfig is no candidate here


class AdminConsoleConfig(AppConfig):
    name = "admin_console"
    verbose_name = "Console"

    def ready(self) -> None:
        from celery import signals

        from admin_console import workers

        signals.worker_ready.connect(workers.on_worker_ready, weak=False)
        signals.worker_shutdown.connect(workers.on_worker_shutdown, weak=False)


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the console's site as ``admin.site`` (in INSTALLED_APPS instead of it)."""

    default = False  # "admin_console" in INSTALLED_APPS still means AdminConsoleConfig
    default_site = "admin_console.site.ConsoleAdminSite"
