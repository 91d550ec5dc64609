"""Benchmark settings: comms plus django-post-office, so both run on the same database."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]  # noqa: F405
import os  # noqa: E402

# BENCH_PO_THREADS: post-office's sending threads per process (its default is 5; bench/latency.py tunes it).
POST_OFFICE = {"BATCH_SIZE": 1000, "DEFAULT_PRIORITY": "medium", "LOG_LEVEL": 0,
               "THREADS_PER_PROCESS": int(os.environ.get("BENCH_PO_THREADS", 5))}
