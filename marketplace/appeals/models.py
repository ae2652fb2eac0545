"""Appeals of rejections: one per submission, open until an admin upholds or overturns it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

APPEAL_STATUSES = ("open", "upheld", "overturned")
# open → upheld (the rejection stands) | overturned (the submission is approved and paid).
APPEAL_MOVES = {"uphold": (("open",), "upheld"), "overturn": (("open",), "overturned")}


class Appeal(db.Model):
    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("apl"))
    # Once per submission: the database refuses a second.
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"), unique=True)
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"), index=True)
    message: Mapped[str] = mapped_column(sa.String(2000))
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(sa.String(60))
    decision_reason: Mapped[str | None] = mapped_column(sa.String(1000))

    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name="status_known"),
        sa.Index("ix_appeals_status_created", "status", "created_at", "id"),
        sa.Index("ix_appeals_worker_status", "worker_id", "status"),
    )
