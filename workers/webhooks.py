"""Webhook jobs: an endpoint's deliveries, one delivery attempt (jobs queued before endpoints had
their own), and the sweep that enqueues every endpoint with due deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from workers import job

# Often enough that an event whose after-commit enqueue was lost still reaches its endpoints within seconds.
SWEEP_EVERY_SECONDS = 5


@job
def deliver_endpoint(endpoint_id: str) -> dict[str, int]:
    """The endpoint's due deliveries, a batch at a time, until none is left or one fails."""
    from marketplace.webhooks import service

    return service.deliver_endpoint(endpoint_id)


@job
def deliver(delivery_id: str) -> str | None:
    """One attempt of one (event, endpoint) delivery; safe to run twice (the lease decides)."""
    from marketplace.webhooks import service

    return service.deliver(delivery_id)


def deliver_soon(endpoint_ids: Sequence[str]) -> None:
    """After a commit that gave these endpoints new deliveries (marketplace.webhooks calls it through
    app.extensions, set by its routes): one job each, unless one is queued or running already."""
    from marketplace import jobs
    from marketplace.webhooks import service

    for endpoint_id in endpoint_ids:
        jobs.enqueue(deliver_endpoint, endpoint_id, job_id=service.endpoint_job_id(endpoint_id), unique=True,
                     timeout=service.job_timeout())


@job
def sweep_deliveries() -> int:
    """Scheduled (workers.schedule.PERIODIC): enqueue the jobs of endpoints whose deliveries are due
    and not in flight; how many deliveries that is."""
    from marketplace import jobs
    from marketplace.webhooks import service

    due = service.due_endpoints()
    for endpoint_id, job_id, _ in due:
        jobs.enqueue(deliver_endpoint, endpoint_id, job_id=job_id, unique=True, timeout=service.job_timeout())
    return sum(count for _, _, count in due)
