"""Our own records of money moving through Stripe: brief funding payments, refunds, and webhook events seen."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class Payment(db.Model):
    """A brand paying for a brief: one Stripe PaymentIntent, made with this row's id as idempotency key."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("pay"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    # created → requires_payment → succeeded | failed | superseded
    status: Mapped[str] = mapped_column(sa.String(16), default="created")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The charge Stripe made and the fee it kept, from the charge's balance transaction, recorded
    # (and the fee booked) when the payment succeeds; null for offline payments (demo, benchmarks).
    stripe_charge_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True, index=True)
    stripe_fee_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The last failed attempt to pay (a declined card), shown on the brief until one succeeds;
    # failure_event_created orders failures whose events arrive out of order.
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    failed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    failure_event_created: Mapped[int | None] = mapped_column(sa.BigInteger)


class Refund(db.Model):
    """Money going back to a brand; the row exists (and holds the money) before Stripe is asked."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("rfd"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), index=True)
    payment_id: Mapped[str] = mapped_column(sa.ForeignKey("payments.id"))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | succeeded | failed
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A person's retry of a failed refund is a new row: the first refund it retries, and which
    # attempt it is (the idempotency key is derived from both).
    retry_of: Mapped[str | None] = mapped_column(sa.ForeignKey("refunds.id"))
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")

    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
                      sa.UniqueConstraint("retry_of", "attempt", name="uq_refunds_retry_attempt"))


class StripeEvent(db.Model):
    """Every webhook event id we have handled: the primary key is what makes a replay a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
