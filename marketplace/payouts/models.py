"""Workers' Stripe Connect accounts, and payout batches: one item (one transfer) per worker per batch."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class PayoutAccount(db.Model):
    __tablename__ = "payout_accounts"

    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    payouts_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    transfers_active: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    details_submitted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Our own block, apart from Stripe's flags: a failed bank payout sets it, and only an
    # account.updated whose event is newer than that failure and shows a good state lifts it
    # (Stripe may re-enable payouts while the bank account is still bad, and events come out of order).
    blocked_reason: Mapped[str | None] = mapped_column(sa.String(200))
    blocked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))  # the event's `created`
    blocked_by_event: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class PayoutBatch(db.Model):
    __tablename__ = "payout_batches"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("pb"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    min_amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    # pending → processing → completed | completed_with_failures
    status: Mapped[str] = mapped_column(sa.String(32), default="pending")
    created_by: Mapped[str] = mapped_column(sa.String(60))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'completed_with_failures')", name="status_known"),
    )


class PayoutItem(db.Model):
    """One worker's money in one batch. Its id (with the try's number after the first: see
    transfer_key) is the Stripe idempotency key of its transfer."""

    __tablename__ = "payout_items"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("pbi"))
    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("payout_batches.id"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), index=True)
    stripe_account_id: Mapped[str] = mapped_column(sa.String(255))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # pending → sending → paid | failed | held; held → sending; paid → reversed (ITEM_TRANSITIONS)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    stripe_transfer_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Held: when Stripe says the pending funds that cover it become available (None: they do not).
    available_on: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Which try of the transfer the item is on: each try after a hold has a key of its own, since
    # Stripe replays a saved refusal (balance_insufficient) for the key it was made with.
    transfer_attempt: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")

    @property
    def transfer_key(self) -> str:
        return transfer_key(self.id, self.transfer_attempt)

    __table_args__ = (
        sa.UniqueConstraint("batch_id", "worker_id", name="uq_payout_items_batch_worker"),
        sa.Index("ix_payout_items_batch_status", "batch_id", "status"),
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        sa.CheckConstraint("status IN ('pending', 'sending', 'held', 'paid', 'failed', 'reversed')", name="status_known"),
    )


# The legal moves of an item, written once: `sending` is asked of Stripe; `held` waits for pending
# funds and goes back to `sending` (a new try, a new key) when they are available.
ITEM_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("sending", "paid"),  # paid: a transfer.reversed webhook proves the transfer was made
    "sending": ("paid", "failed", "held"),
    "held": ("sending", "failed"),
    "paid": ("reversed",),
    "failed": (),
    "reversed": ("reversed",),  # a further partial reversal
}


def transfer_key(item_id: str, attempt: int) -> str:
    """The idempotency key of an item's transfer on its n-th try: the item id, then `<id>:attempt-<n>`."""
    return item_id if attempt <= 1 else f"{item_id}:attempt-{attempt}"


class PayoutItemSubmission(db.Model):
    """Which approved submissions an item's money is for, recorded when the batch reserves it: the
    item's transfer settling makes them paid, its reversal brings them back to approved."""

    __tablename__ = "payout_item_submissions"

    payout_item_id: Mapped[str] = mapped_column(sa.ForeignKey("payout_items.id"), primary_key=True)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"), primary_key=True, index=True)


SKIP_REASONS = ("no_payout_account", "payout_account_blocked", "payouts_disabled", "under_minimum", "held")


class PayoutSkip(db.Model):
    """A worker with money available whom a batch left out, and why, as of the batch's snapshot."""

    __tablename__ = "payout_skips"

    batch_id: Mapped[str] = mapped_column(sa.ForeignKey("payout_batches.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(32))
    available_cents: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.CheckConstraint(
            "reason IN ('no_payout_account', 'payout_account_blocked', 'payouts_disabled', 'under_minimum', 'held')",
            name="reason_known"),
    )
