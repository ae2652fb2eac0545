"""The events table (the outbox), owned by marketplace.events: rows are written only by
marketplace.events.service.record / record_many, in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import rfc3339, utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

BRIEF_FUNDED = "brief.funded"
BRIEF_LIVE = "brief.live"
BRIEF_PAUSED = "brief.paused"
BRIEF_COMPLETED = "brief.completed"
BRIEF_CANCELLED = "brief.cancelled"
SUBMISSION_NEEDS_REVIEW = "submission.needs_review"
SUBMISSION_AUTO_REJECTED = "submission.auto_rejected"
SUBMISSION_APPROVED = "submission.approved"
SUBMISSION_REJECTED = "submission.rejected"
SUBMISSION_REVISION_REQUESTED = "submission.revision_requested"
# Written by the appeals owner when it decides an appeal: record(brand_id, APPEAL_DECIDED, {…}).
APPEAL_DECIDED = "appeal.decided"
REFUND_SUCCEEDED = "refund.succeeded"

TYPES = (BRIEF_FUNDED, BRIEF_LIVE, BRIEF_PAUSED, BRIEF_COMPLETED, BRIEF_CANCELLED, SUBMISSION_NEEDS_REVIEW,
         SUBMISSION_AUTO_REJECTED, SUBMISSION_APPROVED, SUBMISSION_REJECTED, SUBMISSION_REVISION_REQUESTED,
         APPEAL_DECIDED, REFUND_SUCCEEDED)


class Event(db.Model):
    """Something that happened to one of a brand's records: `object` is that record as it was then."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("evt"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    type: Mapped[str] = mapped_column(sa.String(60))
    object: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.Index("ix_events_brand_created", "brand_id", "created_at", "id"),
        sa.Index("ix_events_brand_type_created", "brand_id", "type", "created_at", "id"),
    )

    def payload(self) -> dict:
        """The event as it is listed and delivered: {id, type, created_at, data: {object}} (Standard
        Webhooks' body shape), JSON-ready."""
        return {"id": self.id, "type": self.type, "created_at": rfc3339(self.created_at), "data": {"object": self.object}}
