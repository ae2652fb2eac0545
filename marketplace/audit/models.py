"""The audit log's one table. Append-only: on PostgreSQL a trigger refuses every UPDATE and DELETE
(migration 0023); on SQLite, row triggers do the same."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class AuditEvent(db.Model):
    """Who did what to which record, when and why."""

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("aud"))
    # admin:adm_…, brand:brand_…, worker:wrk_…, or system:<job> for what a scheduled job did.
    actor: Mapped[str] = mapped_column(sa.String(60))
    action: Mapped[str] = mapped_column(sa.String(60))
    subject: Mapped[str] = mapped_column(sa.String(40), index=True)
    reason: Mapped[str | None] = mapped_column(sa.String(1000))
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.Index("ix_audit_events_created", "created_at", "id"),
        sa.Index("ix_audit_events_actor_created", "actor", "created_at", "id"),
        sa.Index("ix_audit_events_action_created", "action", "created_at", "id"),
    )
