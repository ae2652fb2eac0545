"""The webhook_endpoints and webhook_deliveries tables, owned by marketplace.webhooks (the events
they deliver are marketplace.events')."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class WebhookEndpoint(db.Model):
    """Where a brand wants its events POSTed, and the secret(s) that sign them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("whe"))
    brand_id: Mapped[str] = mapped_column(sa.ForeignKey("brands.id"))
    url: Mapped[str] = mapped_column(sa.String(2048))
    # Event types, or ["*"]: every type.
    events: Mapped[list] = mapped_column(sa.JSON)
    # Standard Webhooks secrets (whsec_…): kept, as the signature needs them, never shown after creation.
    secret: Mapped[str] = mapped_column(sa.String(100))
    # After a rotation the old secret keeps signing alongside the new one until previous_secret_expires_at.
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set when its deliveries failed for the whole retry schedule: nothing more is sent to it.
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (sa.Index("ix_webhook_endpoints_brand_created", "brand_id", "created_at", "id"),)


class WebhookDelivery(db.Model):
    """One event to one endpoint, until it succeeds or its retry schedule ends; its attempts are
    its `attempts` list ({at, status_code, duration_ms, error})."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("whd"))
    endpoint_id: Mapped[str] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id"))
    # pending (due at next_attempt_at) → succeeded | failed (the schedule ran out).
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    attempts: Mapped[list] = mapped_column(sa.JSON, default=list)
    next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A worker holds the delivery until then; a worker killed mid-delivery lets it lapse and the sweep retries.
    leased_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        sa.Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_event", "event_id"),
    )
