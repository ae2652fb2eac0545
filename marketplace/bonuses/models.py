"""The bonuses table: every bonus paid, one-off (a brand's or an admin's) or earned by a conversion."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

# one_off: POST /v1/bonuses; performance: a conversion on an approved task of a group with a bonus.
KINDS = ("one_off", "performance")
# The ledger entry kind each books (ref_id = the bonus id): escrow → the worker's available balance.
LEDGER_KINDS = {"one_off": "bonus", "performance": "performance_bonus"}


class Bonus(db.Model):
    """A bonus is written once, with its ledger entry, and never changes: its money then travels
    with the worker's available balance (payout batches pay it like approved work)."""

    __tablename__ = "bonuses"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("bon"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    # A performance bonus's group, task and the conversion that earned it (once per conversion).
    group_id: Mapped[str | None] = mapped_column(sa.ForeignKey("task_groups.id"))
    task_id: Mapped[str | None] = mapped_column(sa.ForeignKey("tasks.id"))
    conversion_id: Mapped[str | None] = mapped_column(sa.ForeignKey("conversions.id"))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(60))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("conversion_id", name="uq_bonuses_conversion"),
        sa.CheckConstraint("kind IN ('one_off', 'performance')", name="kind_known"),
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        sa.CheckConstraint("(kind = 'performance') = (conversion_id IS NOT NULL)", name="performance_has_conversion"),
        sa.Index("ix_bonuses_worker_created", "worker_id", "created_at", "id"),
        sa.Index("ix_bonuses_brief_created", "brief_id", "created_at", "id"),
        # What a task has earned so far (the cap), index-only.
        sa.Index("ix_bonuses_task_amount", "task_id", "amount_cents"),
    )
