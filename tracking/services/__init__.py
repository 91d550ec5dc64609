"""Tracking use cases; other apps import from here."""

from tracking.services.alerts import alerts_check, rolling_rates, variant_pause
from tracking.services.events import Applied, Item, Outcome, event_ingest, events_apply, message_match, messages_match
from tracking.services.metrics import metrics_reconcile, metrics_reconcile_recent, recount

__all__ = ["Applied", "Item", "Outcome", "alerts_check", "event_ingest", "events_apply", "message_match",
           "messages_match", "metrics_reconcile",
           "metrics_reconcile_recent", "recount", "rolling_rates", "variant_pause"]
