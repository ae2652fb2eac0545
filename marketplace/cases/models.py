"""Cases a person must resolve (a refund the bank failed, a transfer unlike its item); every action
taken on them is in the audit log (marketplace.audit)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

# refund_failed: a refund of ours Stripe refused or the bank failed later (subject: the first
# refund, whatever retries followed); transfer_mismatch: a Stripe transfer for one of our payout
# items whose amount or destination is not the item's (subject: the payout item).
CASE_KINDS = ("refund_failed", "transfer_mismatch")
# open → retrying (a retry was sent; its outcome decides) → open | resolved; open → settled (by a person)
CASE_STATUSES = ("open", "retrying", "resolved", "settled")


class MoneyCase(db.Model):
    __tablename__ = "money_cases"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("case"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    detail: Mapped[str] = mapped_column(sa.String(1000))
    amount_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    # The Stripe object it is about, when there is one (the transfer unlike its item).
    stripe_object_id: Mapped[str | None] = mapped_column(sa.String(255))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(sa.String(60))

    __table_args__ = (
        sa.UniqueConstraint("kind", "subject_id", name="uq_money_cases_kind_subject"),
        sa.Index("ix_money_cases_status_created", "status", "created_at", "id"),
        sa.CheckConstraint("kind IN ('refund_failed', 'transfer_mismatch')", name="kind_known"),
        sa.CheckConstraint("status IN ('open', 'retrying', 'resolved', 'settled')", name="status_known"),
    )

