"""Payout jobs: process a batch (one Stripe transfer per item), resume stalled batches, reverse an item."""

from __future__ import annotations

import time

from workers import job


@job
def process_batch(batch_id: str) -> dict:
    from marketplace.payouts import service

    return service.process_batch(batch_id)


@job
def resume_stalled_batches() -> list[str]:
    """Periodic: batches whose runner died (or whose outcomes stayed unknown) get a new run."""
    from marketplace.jobs import enqueue
    from marketplace.payouts import service
    from workers.schedule import every_seconds

    batch_ids = service.stalled_batch_ids()
    # The job id carries the slot of this job's interval: one resumed run per batch per interval.
    slot = int(time.time() // every_seconds(resume_stalled_batches))
    for batch_id in batch_ids:
        enqueue(process_batch, batch_id, queue_name_="payouts",
                job_id=f"payout-{batch_id}-resume-{slot}", timeout=3600)
    return batch_ids


@job
def reverse_item(item_id: str, reason: str) -> str:
    from marketplace.payouts import service

    return service.reverse_item(item_id, reason)
