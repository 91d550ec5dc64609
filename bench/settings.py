"""Benchmark settings: comms plus django-post-office, so both run on the same database."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]  # noqa: F405
POST_OFFICE = {"BATCH_SIZE": 1000, "DEFAULT_PRIORITY": "medium", "LOG_LEVEL": 0}
