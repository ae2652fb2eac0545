"""Webhook jobs: one delivery attempt, and the sweep that enqueues every due delivery."""

from __future__ import annotations

from workers import job

# Often enough that an event reaches its endpoints within seconds of its commit.
SWEEP_EVERY_SECONDS = 5


@job
def deliver(delivery_id: str) -> str | None:
    """One attempt of one (event, endpoint) delivery; safe to run twice (the lease decides)."""
    from marketplace.webhooks import service

    return service.deliver(delivery_id)


@job
def sweep_deliveries() -> int:
    """Scheduled (workers.schedule.PERIODIC): enqueue deliveries that are due and not in flight."""
    from marketplace import jobs
    from marketplace.webhooks import service

    due = service.due_deliveries()
    for delivery_id, job_id in due:
        jobs.enqueue(deliver, delivery_id, job_id=job_id, unique=True, timeout=service.job_timeout())
    return len(due)
