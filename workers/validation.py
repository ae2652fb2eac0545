"""Jobs for proof validation: validate one submission, and re-enqueue ones a dead worker left behind."""

from __future__ import annotations

from datetime import timedelta

from workers import job


@job
def validate_submission(submission_id: str) -> str | None:
    """Run the checks on a submission and decide needs_review / auto_rejected (safe to repeat)."""
    from marketplace.proofs import validation

    return validation.validate_submission(submission_id)


@job
def sweep_stuck_validations() -> dict:
    """Re-enqueue submissions stuck in `validating`; after VALIDATION_MAX_ATTEMPTS, hand them to a person.

    A job whose worker died mid-run leaves the submission `validating` with its attempt
    counted; RQ only notices after the job timeout, and a lost enqueue is never noticed at
    all. The job id carries the attempt count, so two sweeps enqueue one job per attempt.
    """
    from flask import current_app

    from marketplace.db.clock import utcnow
    from marketplace.proofs import service, validation

    age = timedelta(seconds=current_app.config["VALIDATION_STUCK_AFTER_SECONDS"])
    rerun, given_up = validation.stuck_submissions(utcnow() - age, current_app.config["VALIDATION_MAX_ATTEMPTS"])
    enqueued = sum(service.enqueue_validation(sub_id, attempts) for sub_id, attempts in rerun)
    return {"enqueued": enqueued, "stuck": len(rerun), "given_up": len(given_up)}
