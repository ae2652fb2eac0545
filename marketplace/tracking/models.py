"""Clicks on tracked links and the conversions brands report against them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class Click(db.Model):
    """One visit through GET /t/{code}. The claim's ids are copied in so reports never join claims.

    No personal data is kept: the visitor's IP address and user agent are stored only as
    HMAC-SHA256 digests keyed with SECRET_KEY (enough to count distinct visitors, not to
    recover who they were).

    On PostgreSQL the table is partitioned by month of clicked_at (migration 0035; the partitions
    live in the click_partitions schema and tracking.partitions creates them ahead), so the
    primary key includes clicked_at. The once-per-visit unique index
    (claim_id, visitor_hash, visit_window) cannot be declared on a partitioned parent (a unique
    index there must include the partition key): it is made on every partition instead (and on
    the table itself in the embedded SQLite, migration 0006), which is why it is not listed here.
    Reports count clicks from ClickHourly, kept in the click's own statement.
    """

    __tablename__ = "clicks"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("clk"))
    claim_id: Mapped[str] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    task_id: Mapped[str] = mapped_column(sa.ForeignKey("tasks.id"))
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    clicked_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True, default=utcnow)
    ip_hash: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # A visitor is an address and a user agent together (one keyed digest of both); a visitor's
    # clicks on one link count once per window, numbered from the epoch. Null on clicks stored
    # before visits were counted (each of those counted).
    visitor_hash: Mapped[str | None] = mapped_column(sa.String(64))
    visit_window: Mapped[int | None] = mapped_column(sa.BigInteger)

    __table_args__ = (
        # The per-address cap counts an address's clicks of the last minute.
        sa.Index("ix_clicks_ip_at", "ip_hash", "clicked_at"),
    )


class ClickHourly(db.Model):
    """Clicks counted per (brief, group, worker, UTC hour): what reports read instead of the raw clicks.

    Kept by the click's own statement (tracking.service: the INSERT of the click and an
    INSERT … ON CONFLICT DO UPDATE of its hour, in one statement and so one transaction), so a
    reader sees a click in the roll-up exactly when it sees the click itself. An hour never
    straddles a UTC day, so days are sums of hours.
    """

    __tablename__ = "clicks_hourly"

    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    clicks: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (sa.CheckConstraint("clicks >= 0", name="clicks_not_negative"),)


class Conversion(db.Model):
    """A sale (or sign-up) a brand attributes to a tracked link, once per (brand, external_id)."""

    __tablename__ = "conversions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("conv"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    claim_id: Mapped[str] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    click_id: Mapped[str | None] = mapped_column(sa.String(40))
    # The click's time, with its id the key of the partitioned clicks table (see Click).
    click_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    task_id: Mapped[str] = mapped_column(sa.ForeignKey("tasks.id"))
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    value_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # code | click_id | promo_code: what the brand reported it by; NULL on conversions stored before.
    attributed_by: Mapped[str | None] = mapped_column(sa.String(16))
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("brand_id", "external_id", name="uq_conversions_brand_external_id"),
        sa.CheckConstraint("value_cents >= 0", name="value_not_negative"),
        sa.ForeignKeyConstraint(["click_id", "click_at"], ["clicks.id", "clicks.clicked_at"],
                                name="fk_conversions_click_id_clicks"),
        # value_cents is the last key so revenue sums are index-only too.
        sa.Index("ix_conversions_brief_group_worker_at", "brief_id", "group_id", "worker_id", "occurred_at",
                 "value_cents"),
    )
