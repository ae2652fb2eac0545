"""The Stripe event map: each event type the webhook acts on, and the handler that does.

Like the URL map (marketplace.routes), it only imports: payments/ verifies and records events
without knowing the domains that act on them; the app factory hands this table to the webhook
(app.extensions["stripe_events"]). A type not named here is recorded and otherwise ignored.
"""

from __future__ import annotations

from marketplace.briefs import lifecycle as briefs
from marketplace.payments import service as payments
from marketplace.payments.service import Handler
from marketplace.payouts import service as payouts
from workers import payouts as payout_jobs

HANDLERS: dict[str, Handler] = {
    # A brief's funding.
    "payment_intent.succeeded": briefs.on_payment_succeeded,
    "payment_intent.payment_failed": payments.payment_failed,
    # Refunds of what a brief did not spend.
    "refund.failed": briefs.on_refund_failed,
    "refund.updated": briefs.on_refund_failed,
    "charge.refund.updated": briefs.on_refund_failed,
    # Workers' Connect accounts and payouts.
    "account.updated": payouts.account_updated,
    "transfer.reversed": payouts.transfer_reversed,
    "payout.failed": payout_jobs.payout_failed,  # (its reversal is a job's)
}
