"""Review jobs: auto-approval of due submissions whose checks all passed, and lapsed revision requests."""

from __future__ import annotations

import logging

from workers import job

log = logging.getLogger(__name__)


@job
def auto_approve_due() -> dict:
    """Scheduled (marketplace.jobs.PERIODIC). Safe to run twice or beside a person's bulk approval:
    every approval locks its submission and re-reads its status first."""
    from marketplace.reviews import service

    result = service.auto_approve_due()
    result["revisions_lapsed"] = service.close_lapsed_revisions()
    if result["approved"] or result["skipped"] or result["revisions_lapsed"]:
        log.info("auto-approval: %s", result)
    return result
