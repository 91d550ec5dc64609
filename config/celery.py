"""The Celery app: queues p0..p4, one per priority (see delivery.tasks)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("comms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(f"p{p}") for p in range(5)]
app.autodiscover_tasks()
