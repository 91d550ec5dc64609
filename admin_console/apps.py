from django.apps import AppConfig


class AdminConsoleConfig(AppConfig):
    name = "admin_console"
    verbose_name = "Console"

    def ready(self) -> None:
        from celery import signals

        from admin_console import workers

        signals.worker_ready.connect(workers.on_worker_ready, weak=False)
        signals.worker_shutdown.connect(workers.on_worker_shutdown, weak=False)
