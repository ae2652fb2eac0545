"""Briefs (campaigns) and their pay-per-action task groups (the tasks a group expands into are tasks/')."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

KINDS = ("caption", "clip", "review", "translation", "keyword_tags", "survey")
OBJECTIVES = ("awareness", "traffic", "engagement", "conversions", "content")
STATUSES = ("draft", "funded", "live", "paused", "completed", "cancelled")
CLOSED = ("completed", "cancelled")  # ended: no task reopens, unowed escrow goes back
MAX_GROUP_QUANTITY = 100_000  # tasks in one group (one publish inserts them all)

# Which action takes a brief from which status to which. Anything else is a 409.
TRANSITIONS = {
    "fund": ({"draft"}, "funded"),
    "publish": ({"funded"}, "live"),
    "pause": ({"live"}, "paused"),
    "resume": ({"paused"}, "live"),
    "complete": ({"live", "paused"}, "completed"),
    "cancel": ({"draft", "funded", "live", "paused"}, "cancelled"),
}


def fee_for(unit_price_cents: int, fee_bps: int) -> int:
    """The platform fee on one approved action, rounded half up to a whole cent."""
    return (unit_price_cents * fee_bps + 5000) // 10000


def groups_cost(groups) -> int:
    """What every task of these groups costs when approved, before fees."""
    return sum(g.quantity * g.unit_price_cents for g in groups)


def groups_fee(groups, fee_bps: int) -> int:
    return sum(g.quantity * fee_for(g.unit_price_cents, fee_bps) for g in groups)


def groups_bonus_reserve(groups) -> int:
    """What the groups' performance bonuses can cost at most: every task earning its cap. The budget
    rule counts it and funding charges it, so a promised bonus is always covered. (No platform fee
    is taken on bonuses.)"""
    return sum(g.quantity * (getattr(g, "bonus_max_per_task_cents", None) or 0) for g in groups)


class Brief(db.Model):
    __tablename__ = "briefs"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("brief"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    objective: Mapped[str] = mapped_column(sa.String(32))
    audience: Mapped[str | None] = mapped_column(sa.Text)
    key_message: Mapped[str | None] = mapped_column(sa.Text)
    hook: Mapped[str | None] = mapped_column(sa.Text)
    offer: Mapped[str | None] = mapped_column(sa.Text)
    prohibitions: Mapped[list] = mapped_column(sa.JSON, default=list)
    reference_url: Mapped[str | None] = mapped_column(sa.String(2048))
    landing_url: Mapped[str] = mapped_column(sa.String(2048))
    budget_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    target_cpa_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    starts_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    auto_approve_after_hours: Mapped[int] = mapped_column(sa.Integer)
    disclosure_required: Mapped[bool] = mapped_column(sa.Boolean)
    # The disclosure must also be readable on the screenshot itself (France's influencer law).
    disclosure_on_media: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # {channels, term_days, territories, exclusive} (briefs/rights.py), or None: no rights stated.
    usage_rights: Mapped[dict | None] = mapped_column(sa.JSON)
    # Each claim also carries a unique promo code (tasks/promo_codes.py), for sales without a click.
    promo_codes: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # The fee rate is fixed when the brief is made: later config changes never reprice it.
    fee_bps: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    funded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    task_groups: Mapped[list[TaskGroup]] = relationship(
        back_populates="brief", order_by="TaskGroup.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint("budget_cents > 0", name="budget_positive"),
        sa.CheckConstraint("ends_at > starts_at", name="window_ordered"),
        sa.CheckConstraint(
            "status IN ('draft', 'funded', 'live', 'paused', 'completed', 'cancelled')", name="status_known"
        ),
        sa.Index("ix_briefs_brand_created", "brand_id", "created_at", "id"),
    )

    @property
    def cost_cents(self) -> int:
        """What every task of every group costs when approved, before fees."""
        return groups_cost(self.task_groups)

    @property
    def fee_cents(self) -> int:
        return groups_fee(self.task_groups, self.fee_bps)

    @property
    def bonus_reserve_cents(self) -> int:
        return groups_bonus_reserve(self.task_groups)

    @property
    def committed_cents(self) -> int:
        """The most this brief can ever spend: every task approved, fees included, and every
        performance bonus earned to its cap."""
        return self.cost_cents + self.fee_cents + self.bonus_reserve_cents


class TaskGroup(db.Model):
    __tablename__ = "task_groups"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("grp"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.String(100))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    unit_price_cents: Mapped[int] = mapped_column(sa.BigInteger)
    instructions: Mapped[str | None] = mapped_column(sa.Text)
    max_per_worker: Mapped[int | None] = mapped_column(sa.Integer)
    proof: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    paused_reason: Mapped[str | None] = mapped_column(sa.String(300))
    # A performance bonus: each conversion on an approved task's tracked link earns its worker
    # this much, up to the cap per task (marketplace.bonuses). Both or neither.
    bonus_per_conversion_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    bonus_max_per_task_cents: Mapped[int | None] = mapped_column(sa.BigInteger)

    brief: Mapped[Brief] = relationship(back_populates="task_groups")

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_price_cents > 0", name="price_positive"),
        sa.CheckConstraint(
            "kind IN ('caption', 'clip', 'review', 'translation', 'keyword_tags', 'survey')", name="kind_known"
        ),
        sa.CheckConstraint(
            "(bonus_per_conversion_cents IS NULL) = (bonus_max_per_task_cents IS NULL) AND "
            "(bonus_per_conversion_cents IS NULL OR (bonus_per_conversion_cents > 0 "
            "AND bonus_max_per_task_cents >= bonus_per_conversion_cents))", name="bonus_terms"),
        # The FTC's rule on reviews (16 CFR 465.4): no pay tied to what a review does or says.
        sa.CheckConstraint("kind <> 'review' OR bonus_per_conversion_cents IS NULL", name="no_review_bonus"),
    )
