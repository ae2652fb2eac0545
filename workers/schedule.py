"""The schedule: which jobs the scheduler process (or `flask serve`) enqueues, and how often.

The table names the job functions themselves, so the import graph shows it. It lives with the jobs
rather than in marketplace.jobs: the jobs call marketplace's services, which import marketplace.jobs.
"""

from __future__ import annotations

from marketplace.jobs import Periodic
from workers import (
    claims,
    notifications,
    payments,
    payouts,
    reviews,
    tracking,
    validation,
    webhooks,
)

PERIODIC: list[Periodic] = [
    Periodic("expire-claims", claims.expire_claims, 60),
    Periodic("sweep-validations", validation.sweep_stuck_validations, 120),
    Periodic("auto-approve", reviews.auto_approve_due, 300),
    Periodic("complete-briefs", payments.complete_ended_briefs, 300),
    Periodic("settle-refunds", payments.settle_pending_refunds, 300),
    Periodic("resume-payouts", payouts.resume_stalled_batches, payouts.RESUME_EVERY_SECONDS),
    Periodic("scheduled-payouts", payouts.start_scheduled_batches, 900, setting="PAYOUT_SCHEDULE"),
    Periodic("resume-held-payouts", payouts.resume_held_batches, payouts.RESUME_EVERY_SECONDS),
    Periodic("stop-rule", tracking.sweep_stop_rule, 300),
    Periodic("email-notifications", notifications.send_pending_emails, notifications.EVERY_SECONDS),
    Periodic("webhook-deliveries", webhooks.sweep_deliveries, webhooks.SWEEP_EVERY_SECONDS),
    Periodic("click-partitions", tracking.create_click_partitions, 3600),
    Periodic("fold-click-hours", tracking.fold_click_hours, 3600),
]

