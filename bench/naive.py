"""The naive baseline: one Celery task per email, each calling Django's send_mail."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django  # noqa: E402

django.setup()
from django.conf import settings  # noqa: E402
from django.core.mail import send_mail  # noqa: E402

from comms.redis import redis_client  # noqa: E402

app = Celery("naive", broker=settings.REDIS_URL)
app.conf.task_ignore_result = True
app.conf.worker_prefetch_multiplier = 1

SUBJECT, BODY = "Your weekly digest", "Hello,\n\nthis is the weekly digest.\n" * 20


@app.task(name="bench.naive.send_one")
def send_one(to: str) -> None:
    send_mail(SUBJECT, BODY, "bench@example.com", [to])
    redis_client().incr("bench:naive:sent")
