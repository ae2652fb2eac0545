"""Jobs for proof validation: validate one submission, and re-enqueue ones a dead worker left behind."""

from __future__ import annotations

import logging
from datetime import timedelta

from marketplace.jobs import enqueue
from workers import job

log = logging.getLogger(__name__)

# RQ retries a job that raised (a transient database or Redis failure) after these pauses.
VALIDATION_RETRY_INTERVALS = [10, 30, 120]
# Decoding a 40 MP image and hashing it takes ~1 s; the link probe at most ~4 hops × (3 s
# connect + 5 s per read); the rest is a few queries. Two minutes leaves a wide margin and
# still lets RQ notice a dead worker's job quickly.
VALIDATION_TIMEOUT_SECONDS = 120


@job
def validate_submission(submission_id: str) -> str | None:
    """Run the checks on a submission and decide needs_review / auto_rejected (safe to repeat)."""
    from marketplace.proofs import validation

    return validation.validate_submission(submission_id)


def validation_job_id(submission_id: str, attempts: int = 0) -> str:
    """One job id per submission and started-attempt count, so enqueueing twice makes one job."""
    return f"validate-{submission_id}-{attempts}"


def enqueue_validation(submission_id: str, attempts: int = 0) -> bool:
    """Enqueue the submission's validation once, after the commit that recorded it; False when
    that job is already there.

    A Redis failure here is logged, not raised: the submission is committed as
    `validating` and the sweep (sweep_stuck_validations) picks it up.
    """
    try:
        job = enqueue(validate_submission, submission_id, queue_name_="validation",
                      job_id=validation_job_id(submission_id, attempts), unique=True,
                      retry_intervals=VALIDATION_RETRY_INTERVALS, timeout=VALIDATION_TIMEOUT_SECONDS,
                      # What a run decided is the submission's status; nothing reads the job's return.
                      result_ttl=0)
    except Exception:
        log.exception("could not enqueue validation of %s; the sweep will retry", submission_id)
        return False
    return job is not None


@job
def sweep_stuck_validations() -> dict:
    """Re-enqueue submissions stuck in `validating`; after VALIDATION_MAX_ATTEMPTS, hand them to a person.

    A job whose worker died mid-run leaves the submission `validating` with its attempt
    counted; RQ only notices after the job timeout, and a lost enqueue is never noticed at
    all. The job id carries the attempt count, so two sweeps enqueue one job per attempt.
    """
    from flask import current_app

    from marketplace.db.clock import utcnow
    from marketplace.proofs import validation

    age = timedelta(seconds=current_app.config["VALIDATION_STUCK_AFTER_SECONDS"])
    rerun, given_up = validation.stuck_submissions(utcnow() - age, current_app.config["VALIDATION_MAX_ATTEMPTS"])
    enqueued = sum(enqueue_validation(sub_id, attempts) for sub_id, attempts in rerun)
    return {"enqueued": enqueued, "stuck": len(rerun), "given_up": len(given_up)}
