"""Writing events in the caller's transaction (nothing reported that did not happen, nothing that
happened unreported) and listing a brand's events, in the shape webhooks deliver them."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from marketplace.briefs.models import Brief
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id, sql_new_id
from marketplace.errors import InvalidInput
from marketplace.events.models import (  # noqa: F401 - the types are this module's vocabulary
    APPEAL_DECIDED,
    BRIEF_CANCELLED,
    BRIEF_COMPLETED,
    BRIEF_FUNDED,
    BRIEF_LIVE,
    BRIEF_PAUSED,
    REFUND_SUCCEEDED,
    SUBMISSION_APPROVED,
    SUBMISSION_AUTO_REJECTED,
    SUBMISSION_NEEDS_REVIEW,
    SUBMISSION_REJECTED,
    SUBMISSION_REVISION_REQUESTED,
    TYPES,
    Event,
)
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.webhooks import service as webhooks


def record(brand_id: str, type: str, object: dict) -> str:
    """One event in the caller's transaction (no commit here): it commits with the change, or not at all."""
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event_id, now = new_id("evt"), utcnow()
    db.session.execute(sa.insert(Event).values(id=event_id, brand_id=brand_id, type=type, object=object,
                                               created_at=now))
    webhooks.fan_out(type, [(event_id, brand_id)])
    return event_id


def record_for_brief(brief_id: str, type: str, object: dict) -> str:
    """record() for the brand whose brief it is: for owners (payments) that know the brief, not its brand."""
    brand_id = db.session.scalar(sa.select(Brief.brand_id).where(Brief.id == brief_id))
    return record(brand_id, type, object)


def record_many(type: str, objects: sa.Select) -> int:
    """One event per row of `objects` (it selects `brand_id` and `object`, a JSON value built in the
    database: see marketplace.audit.service.json_object), in one INSERT … SELECT in the caller's
    transaction however many rows: the bulk paths (10,000 approvals) stay set-based. The statement
    returns the ids it made (INSERT … RETURNING), and the webhooks' fan-out is keyed on exactly those."""
    return announce(type, db.session.execute(insert_many(type, objects)).all())


def insert_many(type: str, objects: sa.Select) -> sa.Insert:
    """record_many's INSERT … SELECT … RETURNING (id, brand_id), for a caller that runs it as one
    part of a bigger statement (marketplace.db.together) and then hands what it returned to announce()."""
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    rows = objects.subquery()
    dialect, now = db.session.get_bind().dialect.name, utcnow()
    return sa.insert(Event).from_select(
        ["id", "brand_id", "type", "object", "created_at"],
        sa.select(sql_new_id("evt", dialect), rows.c.brand_id, sa.literal(type), rows.c.object, sa.literal(now)),
    ).returning(Event.id, Event.brand_id)


def announce(type: str, written: Sequence[tuple[str, str]]) -> int:
    """The webhooks' deliveries of the events just written, (event id, brand id) as their INSERT
    returned them; how many events."""
    if written:
        webhooks.fan_out(type, [(event_id, brand_id) for event_id, brand_id in written])
    return len(written)


def list_events(brand_id: str, *, type: str | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """The brand's events, newest first; ?type= an exact type."""
    if type is not None and type not in TYPES:
        raise InvalidInput.field("type", f"Must be one of: {', '.join(TYPES)}.")
    query = sa.select(Event).where(Event.brand_id == brand_id)
    if type is not None:
        query = query.where(Event.type == type)
    rows, next_cursor = page(query, Event, limit=limit, cursor=cursor)
    return [present(row) for row in rows], next_cursor


def present(row: Event) -> dict:
    """The event as it is listed and as webhooks deliver it (Standard Webhooks' body shape)."""
    return {"id": row.id, "type": row.type, "created_at": row.created_at, "data": {"object": row.object}}
