"""Payout jobs: process a batch (one Stripe transfer per item), resume stalled batches and batches
whose held items the available balance can now pay, reverse an item."""

from __future__ import annotations

import time

from marketplace.jobs import enqueue
from workers import job

# How often the schedule (workers.schedule) resumes stalled and held batches; the resumed runs' job ids
# are slotted by it, so it is written once, here.
RESUME_EVERY_SECONDS = 300


def enqueue_batch(batch) -> None:
    """After the commit that created it: pay a pending batch in the background."""
    if batch.status == "pending":
        enqueue(process_batch, batch.id, queue_name_="payouts", job_id=f"payout-{batch.id}",
                timeout=3600, retry_intervals=[30, 120, 600])


def payout_failed(event) -> None:
    """Stripe's payout.failed (a connected account's bank payout): recorded by the payouts service;
    the transfer it names, if any, is reversed by a job (after this commit or on its own: the
    reversal is idempotent on the item's id)."""
    from marketplace.payouts import service

    reversal = service.payout_failed(event)
    if reversal is not None:
        item_id, reason = reversal
        enqueue(reverse_item, item_id, reason, queue_name_="payouts", job_id=f"reverse-{item_id}",
                retry_intervals=[10, 60, 300])


@job
def process_batch(batch_id: str) -> dict:
    from marketplace.payouts import service

    return service.process_batch(batch_id)


def _rerun(batch_ids: list[str], why: str) -> list[str]:
    """A new run of each batch; the job id carries the slot of this job's interval, so each batch
    gets one such run per interval however often (or on however many schedulers) this fires."""
    slot = int(time.time() // RESUME_EVERY_SECONDS)
    for batch_id in batch_ids:
        enqueue(process_batch, batch_id, queue_name_="payouts", job_id=f"payout-{batch_id}-{why}-{slot}", timeout=3600)
    return batch_ids


@job
def resume_stalled_batches() -> list[str]:
    """Periodic: batches whose runner died (or whose outcomes stayed unknown) get a new run."""
    from marketplace.payouts import service

    return _rerun(service.stalled_batch_ids(), "resume")


@job
def resume_held_batches() -> list[str]:
    """Periodic: batches whose held items Stripe's available balance can now pay get a new run
    (which sends each under its next try's idempotency key)."""
    from marketplace.payouts import service

    return _rerun(service.held_batch_ids_ready(), "held")


@job
def start_scheduled_batches() -> list[str]:
    """Periodic, on PAYOUT_SCHEDULE: approved money goes out without an admin. Each batch started
    (one per currency with someone to pay at least PAYOUT_MINIMUM_CENTS) is paid by process_batch."""
    from flask import current_app

    from marketplace.payouts import service

    batches = service.start_scheduled_batches(current_app.config["PAYOUT_MINIMUM_CENTS"])
    for batch in batches:
        enqueue_batch(batch)
    return [batch.id for batch in batches]


@job
def reverse_item(item_id: str, reason: str) -> str:
    from marketplace.payouts import service

    return service.reverse_item(item_id, reason)
