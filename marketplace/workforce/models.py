"""Tables of the workforce: a worker's languages and social accounts, task groups' eligibility
rules, brands' blocks, suspensions, and the keyed device digests fraud signals compare."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

PLATFORMS = ("tiktok", "instagram", "youtube", "x")
# The list-valued rules of a group's eligibility, one row per value (see GroupEligibilityValue).
LIST_RULES = ("countries", "languages", "workers", "exclude_workers")
DEVICE_EVENTS = ("sign_up", "login", "submission")


class WorkerLanguage(db.Model):
    """A language a worker writes in (ISO 639-1), one row each, so eligibility joins on it."""

    __tablename__ = "worker_languages"

    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    language: Mapped[str] = mapped_column(sa.String(2), primary_key=True)


class SocialAccount(db.Model):
    """The handle a worker posts under on one platform. `handle_key` is the handle as compared
    (no '@', lower case): the OCR check matches a screenshot's handle against it."""

    __tablename__ = "social_accounts"

    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    handle: Mapped[str] = mapped_column(sa.String(100))
    handle_key: Mapped[str] = mapped_column(sa.String(100))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("platform IN ('tiktok', 'instagram', 'youtube', 'x')", name="platform_known"),
        sa.Index("ix_social_accounts_platform_handle", "platform", "handle_key"),
    )


class GroupEligibility(db.Model):
    """Who may take a group's tasks: its scalar rules, and the document as the brand sent it.
    A group without a row is open to every worker in good standing."""

    __tablename__ = "group_eligibility"

    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"), primary_key=True)
    min_approval_rate: Mapped[Decimal | None] = mapped_column(sa.Numeric(4, 3))
    min_approved: Mapped[int | None] = mapped_column(sa.Integer)
    # Whether each list rule is set, so the listing tests a flag before it probes the values.
    has_countries: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    has_languages: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    invite_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    rules: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    __table_args__ = (
        sa.CheckConstraint("min_approval_rate IS NULL OR (min_approval_rate >= 0 AND min_approval_rate <= 1)",
                           name="rate_in_range"),
        sa.CheckConstraint("min_approved IS NULL OR min_approved >= 0", name="approved_not_negative"),
    )


class GroupEligibilityValue(db.Model):
    """One value of a list rule: a country, a language, an invited or an excluded worker."""

    __tablename__ = "group_eligibility_values"

    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(40), primary_key=True)

    __table_args__ = (
        sa.CheckConstraint("rule IN ('countries', 'languages', 'workers', 'exclude_workers')", name="rule_known"),
    )


class BrandBlock(db.Model):
    """A brand keeps a worker off its briefs."""

    __tablename__ = "brand_blocks"

    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Suspension(db.Model):
    """An admin's suspension of a worker, ended by a reinstatement; the history is kept. At most
    one is open (reinstated_at null) per worker: that worker is suspended."""

    __tablename__ = "worker_suspensions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("susp"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    suspended_by: Mapped[str] = mapped_column(sa.String(60))
    suspended_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    reinstated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reinstated_by: Mapped[str | None] = mapped_column(sa.String(60))
    reinstate_reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.Index("uq_worker_suspensions_open", "worker_id", unique=True,
                 postgresql_where=sa.text("reinstated_at IS NULL"), sqlite_where=sa.text("reinstated_at IS NULL")),
        sa.Index("ix_worker_suspensions_worker", "worker_id", "suspended_at"),
    )


class DeviceSighting(db.Model):
    """A worker seen from a device: the HMAC (keyed with SECRET_KEY) of the client's address and
    user agent, never the values themselves. Two workers with one digest share a device."""

    __tablename__ = "device_sightings"

    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    device: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_event: Mapped[str] = mapped_column(sa.String(16))
    seen_count: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.CheckConstraint("last_event IN ('sign_up', 'login', 'submission')", name="event_known"),
    )
