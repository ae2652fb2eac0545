"""Request and response shapes for payout accounts, payout batches and worker earnings."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.http.fields import Cents, Currency, UTCDateTime
from marketplace.http.pagination import ListArgs  # noqa: F401 - routes refer to schemas.ListArgs
from marketplace.payouts.models import SKIP_REASONS


class PayoutAccountOut(Schema):
    account_id = fields.String(metadata={"description": "The worker's Stripe Connect (Express) account id."})
    onboarding_url = fields.String(allow_none=True, metadata={
        "description": "A fresh Stripe onboarding link (expires within minutes); null on GET."})
    payouts_enabled = fields.Boolean()
    transfers_active = fields.Boolean()
    details_submitted = fields.Boolean()
    blocked_reason = fields.String(allow_none=True, metadata={"description": (
        "Set when a bank payout to this account failed: batches leave the account out until Stripe's "
        "account.updated, sent after the failure, shows payouts enabled and no bank-account requirement "
        "due or in error. Null when not blocked.")})
    blocked_since = UTCDateTime(allow_none=True, metadata={"description": "Stripe's time of the failure that set the block."})


class BatchIn(Schema):
    currency = Currency()
    # Only workers whose available balance is at least this much are paid (and always more than 0).
    min_amount_cents = Cents(minimum=0, load_default=1)


class Progress(Schema):
    done = fields.Integer()
    total = fields.Integer()


class BatchTotals(Schema):
    items = fields.Integer()
    amount_cents = fields.Integer()
    paid_cents = fields.Integer(metadata={"description": "Transferred and not reversed."})
    failed_cents = fields.Integer()
    reversed_cents = fields.Integer()
    pending_cents = fields.Integer(metadata={"description": "Items not yet settled (pending or sending)."})
    held_cents = fields.Integer(metadata={"description": "Items held until Stripe's pending funds are available "
                                                         "(still in transit; the batch is not finished)."})


class BatchItemOut(Schema):
    id = fields.String()
    worker_id = fields.String()
    worker_name = fields.String(metadata={"description": "The worker's display name, beside the id."})
    amount_cents = fields.Integer()
    currency = fields.String()
    stripe_account_id = fields.String()
    stripe_transfer_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "pending | held | paid | failed | reversed "
                                              "(wholly or in part: see reversed_cents). held: Stripe's available "
                                              "balance cannot cover it yet (card money is pending for days); it is "
                                              "sent again once available_on has passed and the funds are there."})
    transfer_requested = fields.Boolean(metadata={"description": (
        "For a pending item: its transfer was asked of Stripe and the answer is being confirmed (looked up "
        "at Stripe before anything is sent again); failure_reason says when it waits for a person.")})
    reversed_cents = fields.Integer(metadata={"description": "Taken back from the worker's Stripe account by "
                                                             "transfer reversals, and returned to their available balance."})
    failure_reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    available_on = UTCDateTime(allow_none=True, metadata={"description": (
        "For a held item: when Stripe says the pending funds that cover it become available (null "
        "otherwise, or when its pending funds do not cover it).")})
    settled_at = UTCDateTime(allow_none=True)


class BatchOut(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "pending → processing → completed | completed_with_failures; "
                                              "a batch with held items stays processing until they are paid or failed"})
    currency = fields.String()
    min_amount_cents = fields.Integer()
    created_by = fields.String()
    created_at = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)
    progress = fields.Nested(Progress)
    totals = fields.Nested(BatchTotals)


class BatchSkipOut(Schema):
    worker_id = fields.String()
    worker_name = fields.String(metadata={"description": "The worker's display name, beside the id."})
    reason = fields.String(validate=validate.OneOf(SKIP_REASONS), metadata={"description": (
        "no_payout_account: never made one; payout_account_blocked: a bank payout failed and Stripe has not "
        "since shown the account good (see the worker's payout account); payouts_disabled: Stripe does not "
        "let the account receive transfers or payouts yet; under_minimum: less than the batch's minimum; "
        "held: the worker is suspended, and their money waits for their reinstatement.")})
    available_cents = fields.Integer(metadata={"description": "What the worker had available when the batch was made."})


class BatchDetailOut(BatchOut):
    items = fields.List(fields.Nested(BatchItemOut))
    skipped = fields.List(fields.Nested(BatchSkipOut), metadata={"description": (
        "Every worker with money available in the batch's currency whom it did not pay, and why, "
        "as of the batch's snapshot.")})


class BatchPage(Schema):
    data = fields.List(fields.Nested(BatchOut))
    next_cursor = fields.String(allow_none=True)



class CurrencyEarnings(Schema):
    currency = fields.String()
    pending_review_cents = fields.Integer(metadata={
        "description": "Unit prices of your submissions still being validated or awaiting review. "
                       "Not money yet: it becomes available only when a submission is approved."})
    available_cents = fields.Integer(metadata={"description": "Approved and not yet in a payout batch."})
    in_transit_cents = fields.Integer(metadata={"description": "In a payout batch whose transfer is not yet made."})
    paid_cents = fields.Integer(metadata={"description": "Transferred to your Stripe account, less reversals."})
    bonus_cents = fields.Integer(metadata={"description": "Bonuses (one-off and performance) earned in all: part "
                                                          "of available, in transit or paid, as their money moves."})


class EarningsOut(Schema):
    by_currency = fields.List(fields.Nested(CurrencyEarnings))


class WorkerPayoutOut(Schema):
    id = fields.String(metadata={"description": "The payout item (one transfer to you in one batch)."})
    batch_id = fields.String()
    amount_cents = fields.Integer()
    currency = fields.String()
    status = fields.String(metadata={"description": "pending | held | paid | failed | reversed, as the batch's "
                                                    "items show it (failed: the money is back in your available "
                                                    "balance, for the next batch)."})
    stripe_transfer_id = fields.String(allow_none=True)
    reversed_cents = fields.Integer(metadata={"description": "Taken back by transfer reversals (and returned to "
                                                             "your available balance)."})
    submissions = fields.Integer(metadata={"description": "How many approved submissions it pays for."})
    failure_reason = fields.String(allow_none=True)
    available_on = UTCDateTime(allow_none=True, metadata={"description": "For a held item: when Stripe says the "
                                                                         "funds that cover it become available."})
    created_at = UTCDateTime()
    settled_at = UTCDateTime(allow_none=True, metadata={"description": "When the transfer was made (or failed)."})


class WorkerPayoutPage(Schema):
    data = fields.List(fields.Nested(WorkerPayoutOut))
    next_cursor = fields.String(allow_none=True)
