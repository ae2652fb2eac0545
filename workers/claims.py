"""Jobs for claims: unsubmitted claims past their expiry end and their tasks reopen."""

from __future__ import annotations

from workers import job


@job
def expire_claims() -> int:
    """Scheduled every minute (workers.schedule.PERIODIC); safe to run twice or side by side."""
    from marketplace.tasks import service

    return service.expire_due_claims()
