"""Notification jobs: e-mail the notifications that are due (when SMTP_URL is set)."""

from __future__ import annotations

import logging

from workers import job

log = logging.getLogger(__name__)

# Often enough that an e-mail follows its decision within a minute; a send that fails is retried
# on its own back-off (marketplace.notifications.service), not every period.
EVERY_SECONDS = 30


@job
def send_pending_emails() -> dict:
    """Scheduled (workers.schedule.PERIODIC). Safe to run twice at once: each sweep locks the rows it
    mails (SKIP LOCKED), so the other takes different ones."""
    from marketplace.notifications import service

    result = service.send_pending_emails()
    if result["sent"] or result["failed"]:
        log.info("notification e-mails: %s", result)
    return result
