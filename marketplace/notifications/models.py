"""The notifications table: one row per thing a worker is told about, with its read and e-mail state."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

# What a worker is told about; `subject_id` is the submission, payout item, bonus or appeal.
KINDS = ("approved", "rejected", "revision_requested", "paid", "bonus", "appeal_decided")
# none: no e-mail wanted (SMTP_URL unset when it was written); pending → sent | failed (given up).
EMAIL_STATES = ("none", "pending", "sent", "failed")


class Notification(db.Model):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("ntf"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    kind: Mapped[str] = mapped_column(sa.String(24))
    subject_id: Mapped[str] = mapped_column(sa.String(40))
    reason_code: Mapped[str | None] = mapped_column(sa.String(32))
    message: Mapped[str | None] = mapped_column(sa.String(2000))
    amount_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    email_state: Mapped[str] = mapped_column(sa.String(8), default="none", server_default="none")
    email_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    email_next_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    email_error: Mapped[str | None] = mapped_column(sa.String(500))
    emailed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        # A decision or a payment told once, however often the code that records it runs.
        sa.UniqueConstraint("kind", "subject_id", name="uq_notifications_kind_subject"),
        sa.Index("ix_notifications_worker_created", "worker_id", "created_at", "id"),
        sa.Index("ix_notifications_email_due", "email_next_at", postgresql_where=sa.text("email_state = 'pending'"),
                 sqlite_where=sa.text("email_state = 'pending'")),
        sa.CheckConstraint(
            "kind IN ('approved', 'rejected', 'revision_requested', 'paid', 'bonus', 'appeal_decided')",
            name="kind_known"),
        sa.CheckConstraint("email_state IN ('none', 'pending', 'sent', 'failed')", name="email_state_known"),
    )
