"""Delivery use cases. Other apps import from here, never from the submodules' internals."""

from delivery.services.batches import HOLD_UNTIL, Progress, batches_cancel, batches_hold, batches_progress, batches_release
from delivery.services.bulk import BulkResult, BulkRow, message_bulk_enqueue, message_bulk_enqueue_rows
from delivery.services.engine import DrainStats, claim_batch, deliver_batch, drain, drain_all
from delivery.services.enqueue import SendSpec, message_cancel, message_enqueue, message_requeue
from delivery.services.housekeeping import housekeeping_run, leases_reap, waiting_promote
from delivery.services.status import StatusStep, message_advance, messages_advance_bulk

__all__ = [
    "BulkResult", "DrainStats", "SendSpec", "claim_batch", "deliver_batch", "drain", "drain_all",
    "housekeeping_run", "leases_reap", "message_bulk_enqueue", "message_cancel", "message_enqueue",
    "message_requeue", "waiting_promote", "message_advance", "StatusStep", "messages_advance_bulk",
    "BulkRow", "message_bulk_enqueue_rows", "HOLD_UNTIL", "Progress", "batches_cancel", "batches_hold", "batches_progress", "batches_release",
]
