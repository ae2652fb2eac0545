"""Tasks (one paid action each) and claims (one worker's hold on one task; its tracked-link code exists from
the moment of claiming). Their statuses move only through marketplace.tasks.lifecycle."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

# active: held, proof not yet in; submitted: proof in (through review and payment);
# released / expired: given back; rejected: its submission was rejected and the task reopened.
CLAIM_STATUSES = ("active", "submitted", "released", "expired", "rejected")
HOLDING = ("active", "submitted")


class Task(db.Model):
    """One paid action. Rows are made in bulk when the brief is published."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("task"))
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), index=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    # open → claimed → submitted → approved → paid; cancelled when the brief is cancelled unclaimed.
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    worker_id: Mapped[str | None] = mapped_column(sa.ForeignKey("workers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("group_id", "seq", name="uq_tasks_group_seq"),
        # What a claim's foreign key points at: the task with its group and brief (see Claim).
        sa.UniqueConstraint("id", "group_id", "brief_id", name="uq_tasks_id_group_id_brief_id"),
        sa.Index("ix_tasks_group_status_seq", "group_id", "status", "seq"),
        sa.CheckConstraint(
            "status IN ('open', 'claimed', 'submitted', 'approved', 'paid', 'cancelled')", name="status_known"
        ),
    )


class Claim(db.Model):
    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("clm"))
    task_id: Mapped[str] = mapped_column(sa.String(40))
    # The task's group and brief, copied so hot reads need no join; the foreign key below says
    # they are the task's (and locks only the task's row, which the claim holds already, not
    # the group's and the brief's, which every claim of a drop would lock at once).
    group_id: Mapped[str] = mapped_column(sa.String(40))
    brief_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    tracked_code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    # Set when the brief asks for promo codes: unique platform-wide (the index below), upper case.
    promo_code: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    claimed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('active', 'submitted', 'released', 'expired', 'rejected')", name="status_known"
        ),
        # The database itself refuses a second holder of one task.
        sa.Index("uq_claims_task_holding", "task_id", unique=True,
                 postgresql_where=sa.text("status IN ('active', 'submitted')"),
                 sqlite_where=sa.text("status IN ('active', 'submitted')")),
        sa.Index("ix_claims_worker_group_status", "worker_id", "group_id", "status"),
        sa.Index("uq_claims_promo_code", "promo_code", unique=True),
        sa.Index("ix_claims_active_expiry", "expires_at",
                 postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'")),
        sa.ForeignKeyConstraint(["task_id", "group_id", "brief_id"], ["tasks.id", "tasks.group_id", "tasks.brief_id"],
                                name="fk_claims_task_id_tasks"),
    )
