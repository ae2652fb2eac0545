"""Review jobs: auto-approval of due submissions whose checks all passed, and lapsed revision requests."""

from __future__ import annotations

import logging

from workers import job

log = logging.getLogger(__name__)


@job
def auto_approve_due() -> dict:
    """Scheduled (workers.schedule.PERIODIC). Safe to run twice or beside a person's bulk approval:
    every approval locks its submission and re-reads its status first."""
    from marketplace.extensions import db
    from marketplace.reviews import service

    # Each runs whatever the other does: one failing must not hold the other up every period.
    try:
        result = service.auto_approve_due()
    except Exception:
        db.session.rollback()
        log.exception("auto-approval failed; lapsed revisions are closed all the same")
        result = {"approved": 0, "skipped": [], "failed": True}
    result["revisions_lapsed"] = service.close_lapsed_revisions()
    if result["approved"] or result["skipped"] or result["revisions_lapsed"] or result.get("failed"):
        log.info("auto-approval: %s", result)
    if result.get("failed"):
        raise RuntimeError("auto-approval failed (lapsed revisions were closed); see the log above")
    return result
