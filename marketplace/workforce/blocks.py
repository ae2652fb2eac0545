"""A brand's blocks: a blocked worker no longer sees or claims the brand's tasks (the rule
"blocked" of marketplace.workforce.eligibility). Each block and unblock is audited: it changes
the worker's standing with the brand."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.audit import service as audit
from marketplace.auth.models import Worker
from marketplace.db.clock import utcnow
from marketplace.db.upsert import upsert_insert
from marketplace.errors import Conflict, NotFound
from marketplace.extensions import db
from marketplace.http.pagination import decode_cursor, encode_cursor
from marketplace.workforce.models import BrandBlock


def block(brand_id: str, worker_id: str, reason: str) -> BrandBlock:
    """Block the worker for the brand: 404 for a worker that does not exist, 409 when already
    blocked (the block held keeps its reason and time; the brand meant something by it)."""
    if db.session.get(Worker, worker_id) is None:
        raise NotFound(f"No worker {worker_id}.")
    # ON CONFLICT DO NOTHING: two requests at once are one 201 and one 409, never a 5xx.
    created = db.session.execute(
        upsert_insert(BrandBlock).values(brand_id=brand_id, worker_id=worker_id, reason=reason, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["brand_id", "worker_id"]).returning(BrandBlock.worker_id)
    ).first()
    if created is None:
        db.session.rollback()
        raise Conflict(f"Worker {worker_id} is already blocked.")
    audit.record(f"brand:{brand_id}", "worker.blocked", worker_id, reason, {"brand_id": brand_id})
    db.session.commit()
    return db.session.get(BrandBlock, (brand_id, worker_id))


def unblock(brand_id: str, worker_id: str) -> None:
    """Lift the brand's block on the worker; 404 when there is none."""
    removed = db.session.execute(
        sa.delete(BrandBlock).where(BrandBlock.brand_id == brand_id, BrandBlock.worker_id == worker_id)
        .returning(BrandBlock.reason)
    ).first()
    if removed is None:
        db.session.rollback()
        raise NotFound(f"Worker {worker_id} is not blocked.")
    audit.record(f"brand:{brand_id}", "worker.unblocked", worker_id, None,
                 {"brand_id": brand_id, "block_reason": removed.reason})
    db.session.commit()


def list_blocks(brand_id: str, *, limit: int, cursor: str | None) -> tuple[list[BrandBlock], str | None]:
    """The brand's blocks, newest first."""
    query = sa.select(BrandBlock).where(BrandBlock.brand_id == brand_id)
    if cursor:
        created_at, worker_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(BrandBlock.created_at, BrandBlock.worker_id)
                            < sa.tuple_(sa.literal(created_at), sa.literal(worker_id)))
    rows = list(db.session.scalars(
        query.order_by(BrandBlock.created_at.desc(), BrandBlock.worker_id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.worker_id)
