"""Tracking use cases; other apps import from here."""

from tracking.services.alerts import alerts_check, rolling_rates, variant_pause
from tracking.services.events import Outcome, event_ingest, message_match
from tracking.services.metrics import metrics_reconcile, metrics_reconcile_recent, recount

__all__ = ["Outcome", "alerts_check", "event_ingest", "message_match", "metrics_reconcile",
           "metrics_reconcile_recent", "recount", "rolling_rates", "variant_pause"]
