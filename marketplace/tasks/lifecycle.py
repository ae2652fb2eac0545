"""Where a task's or a claim's status changes: every move is a named function here, and the legal
moves are written once, as data. Nothing else writes tasks.status or claims.status.

The functions work in the caller's transaction (they never commit) and are set-based where the
callers are bulk (approving 10,000 at once, expiring every due claim): one statement per table
they change, however many rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from marketplace.briefs.models import CLOSED, Brief, TaskGroup
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id, sql_new_id
from marketplace.db.upsert import upsert_insert
from marketplace.extensions import db
from marketplace.tasks.models import HOLDING, Claim, Task


@dataclass(frozen=True)
class Move:
    """From which statuses an action may move a row, and to which."""

    sources: frozenset[str]
    target: str


def _move(sources: set[str] | tuple[str, ...], target: str) -> Move:
    return Move(frozenset(sources), target)


# open → claimed → submitted → approved → paid. A claim that ends (released, expired, rejected)
# reopens its task, or closes it when its brief has ended; a closed brief closes its open tasks.
TASK_MOVES: dict[str, Move] = {
    "claim": _move({"open"}, "claimed"),
    "submit": _move({"claimed", "submitted"}, "submitted"),  # (submitted again: a revision)
    "approve": _move({"submitted"}, "approved"),
    "reopen": _move({"claimed", "submitted"}, "open"),
    "close": _move({"open", "claimed", "submitted"}, "cancelled"),
    "mark_paid": _move({"approved"}, "paid"),
    "reverse_payment": _move({"paid"}, "approved"),  # the transfer that paid it was reversed
    "take_back": _move({"open"}, "approved"),  # an overturned rejection's task, reopened and not taken since
}

# active → submitted while proof is in (through review and payment); a holding claim ends as
# released (given back), expired (its time or a revision's deadline ran out) or rejected.
CLAIM_MOVES: dict[str, Move] = {
    "submit": _move({"active"}, "submitted"),
    "release": _move(HOLDING, "released"),
    "expire": _move(HOLDING, "expired"),
    "reject": _move(HOLDING, "rejected"),
}


def _task_update(action: str, where: sa.ColumnElement[bool], now: datetime) -> sa.Update:
    move = TASK_MOVES[action]
    # A move from one status is an equality, not IN: the claim's statement runs as a fixed text on
    # the direct path (marketplace/db/direct.py), where an expanding IN list cannot.
    source = (Task.status == next(iter(move.sources)) if len(move.sources) == 1
              else Task.status.in_(sorted(move.sources)))
    return sa.update(Task).where(where, source).values(status=move.target, updated_at=now)


# --- tasks ----------------------------------------------------------------------------------


def create_tasks(brief_id: str, group_id: str | None = None) -> int:
    """One open task per paid action, for every group of the brief (or the one `group_id`, added to a
    running brief), in one INSERT … SELECT."""
    bind = db.session.get_bind()
    task_id = sql_new_id("task", bind.dialect.name)
    groups = TaskGroup.__table__
    if bind.dialect.name == "postgresql":
        n = sa.func.generate_series(1, groups.c.quantity).table_valued("value").render_derived(name="n").lateral()
        source = sa.select(task_id, groups.c.id, groups.c.brief_id, n.c.value, sa.literal("open"), sa.func.now()).select_from(
            groups.join(n, sa.true())
        )
    else:
        top = sa.select(sa.func.max(groups.c.quantity)).where(groups.c.brief_id == brief_id).scalar_subquery()
        seq = sa.select(sa.literal(1).label("i")).cte("seq", recursive=True)
        seq = seq.union_all(sa.select(seq.c.i + 1).where(seq.c.i < top))
        source = sa.select(task_id, groups.c.id, groups.c.brief_id, seq.c.i, sa.literal("open"), sa.func.current_timestamp()).select_from(
            groups.join(seq, seq.c.i <= groups.c.quantity)
        )
    source = source.where(groups.c.brief_id == brief_id)
    if group_id is not None:
        source = source.where(groups.c.id == group_id)
    insert = sa.insert(Task.__table__).from_select(["id", "group_id", "brief_id", "seq", "status", "created_at"], source)
    return db.session.execute(insert).rowcount


def close_open_tasks(brief_id: str) -> None:
    """An ended brief's open tasks close: no one can claim them any more."""
    db.session.execute(_task_update("close", sa.and_(Task.brief_id == brief_id, Task.status == "open"), utcnow()))


def approve_tasks(task_ids: sa.Select, now: datetime) -> sa.Update:
    """What approves the tasks whose proof was approved (`task_ids` selects them), for the caller to
    run in its transaction, on its own or as one part of a bigger statement (marketplace.db.together)."""
    return _task_update("approve", Task.id.in_(task_ids), now)


def take_back(task_id: str, worker_id: str, now: datetime) -> bool:
    """The (locked) task of an overturned rejection goes back to its worker, approved, when it is
    open again; False when someone else holds it (or it closed with its brief)."""
    return db.session.execute(
        _task_update("take_back", Task.id == task_id, now).values(worker_id=worker_id)
    ).rowcount == 1


def mark_paid(task_ids: list[str] | sa.Select, now: datetime | None = None) -> int:
    """Approved tasks whose money reached their worker (`task_ids` may be a select of ids)."""
    return db.session.execute(
        _task_update("mark_paid", Task.id.in_(task_ids), now or utcnow()).execution_options(synchronize_session=False)
    ).rowcount


def reverse_payment(task_ids: list[str] | sa.Select, now: datetime | None = None) -> int:
    """Paid tasks whose transfer was reversed: approved again, to be paid by a later batch."""
    return db.session.execute(
        _task_update("reverse_payment", Task.id.in_(task_ids), now or utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


# --- claims ---------------------------------------------------------------------------------


# Draws of a promo code before a claim gives up (each one collides with odds of about 1 in 10^11).
PROMO_CODE_ATTEMPTS = 5


class PromoCodesExhausted(Exception):
    """Every promo code drawn for one claim was taken already: never expected, but never a loop."""


def claim(task_id: str, *, worker_id: str, group_id: str, brief_id: str, tracked_code: str,
          now: datetime, expires_at: datetime, promo_code: Callable[[], str] | None = None) -> Claim:
    """The open task (locked by the caller) goes to the worker under a new active claim.

    With `promo_code` (a brief with promo codes: it draws a new code each call) the claim is
    inserted at once, INSERT … ON CONFLICT (promo_code) DO NOTHING RETURNING: the unique index
    decides, not a look first, and a code another claim holds (or is inserting concurrently) means
    no row, so a new code is drawn, in the same transaction, with no savepoint. One statement when
    the first code is free, as without promo codes.

    On PostgreSQL the task's UPDATE rides in the claim's INSERT as a data-modifying CTE (the
    claim's task_id is the id the UPDATE returns), so the move is one round trip, not two; should
    the promo code drawn first be taken, the task has moved all the same and each new draw is the
    INSERT alone. (SQLite, the embedded default, has no writing CTEs: two statements there.)"""
    moved = _task_update("claim", Task.id == task_id, now).values(worker_id=worker_id)
    values = dict(group_id=group_id, brief_id=brief_id, worker_id=worker_id,
                  tracked_code=tracked_code, status="active", claimed_at=now, expires_at=expires_at)
    if db.session.get_bind().dialect.name == "postgresql":
        moved_task = moved.returning(Task.id).cte("moved_task")
        first_task = sa.select(moved_task.c.id).scalar_subquery()
    else:
        db.session.execute(moved)
        moved_task, first_task = None, task_id
    for attempt in range(PROMO_CODE_ATTEMPTS if promo_code is not None else 1):
        insert = upsert_insert(Claim).values(**values, id=new_id("clm"), task_id=first_task if attempt == 0 else task_id,
                                             promo_code=promo_code() if promo_code is not None else None)
        if attempt == 0 and moved_task is not None:
            insert = insert.add_cte(moved_task)
        if promo_code is not None:
            insert = insert.on_conflict_do_nothing(index_elements=["promo_code"])
        inserted = db.session.scalars(insert.returning(Claim)).one_or_none()
        if inserted is not None:
            return inserted
    raise PromoCodesExhausted(f"{PROMO_CODE_ATTEMPTS} promo codes drawn for one claim were all taken")


# What a new claim's row gives back to the one statement that inserts it (the claim's view is built from it).
CLAIM_RETURNED = ("id", "task_id", "tracked_code", "promo_code", "status", "claimed_at", "expires_at")
_CLAIM_VALUES = ("id", "task_id", "group_id", "brief_id", "worker_id", "tracked_code", "promo_code", "status",
                 "claimed_at", "expires_at")


def _claim_insert(task_id: sa.ColumnElement, brief_id: sa.ColumnElement | None = None) -> postgresql.Insert:
    """INSERT of an active claim on `task_id`, every other value bound (:claim_id, :group_id,
    :brief_id, :worker_id, :tracked_code, :promo_code, :now, :expires_at); a promo code another
    claim holds means no row (ON CONFLICT (promo_code) DO NOTHING), not an error."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    row = sa.select(
        sa.bindparam("claim_id", type_=sa.String), task_id, sa.bindparam("group_id", type_=sa.String),
        brief_id if brief_id is not None else sa.bindparam("brief_id", type_=sa.String),
        sa.bindparam("worker_id", type_=sa.String),
        sa.bindparam("tracked_code", type_=sa.String), sa.bindparam("promo_code", type_=sa.String),
        sa.literal("active", sa.String), now, sa.bindparam("expires_at", type_=sa.DateTime(timezone=True)))
    return (postgresql.insert(Claim).from_select(list(_CLAIM_VALUES), row)
            .on_conflict_do_nothing(index_elements=["promo_code"])
            .returning(*(Claim.__table__.c[name] for name in CLAIM_RETURNED)))


def claim_picked(pick: sa.ScalarSelect, brief_id: sa.ColumnElement | None = None) -> tuple[sa.CTE, sa.CTE]:
    """The claim's move as data-modifying CTEs for one statement of the caller's (PostgreSQL): the
    open task `pick` names (locked by it, FOR UPDATE SKIP LOCKED) goes to :worker_id, and an
    active claim is inserted for it (see `_claim_insert` for the bound values). Returns the CTEs
    (moved_task with the task's id, new_claim with CLAIM_RETURNED): no rows in either when `pick`
    found no task; a moved task and no claim when the promo code was taken (CLAIM_AGAIN). The
    brief's id is :brief_id unless the caller's statement reads it (`brief_id`)."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    moved = (_task_update("claim", Task.id == pick, now).values(worker_id=sa.bindparam("worker_id", type_=sa.String))
             .returning(Task.id).cte("moved_task"))
    inserted = _claim_insert(moved.c.id, brief_id).cte("new_claim")
    return moved, inserted


# The claim's INSERT alone, for a task already moved in this transaction (a promo code drawn again).
CLAIM_AGAIN = _claim_insert(sa.bindparam("task_id", type_=sa.String))


def submit(held: Claim, now: datetime) -> None:
    """Proof is in for the (locked) claim: the claim is submitted, and so is its task (again, for
    a revision: the claim stays submitted)."""
    if held.status in CLAIM_MOVES["submit"].sources:
        held.status = CLAIM_MOVES["submit"].target
    db.session.execute(_task_update("submit", Task.id == held.task_id, now))


def release(claim_ids: sa.Select) -> int:
    return _end(claim_ids, "release")


def expire(claim_ids: sa.Select) -> int:
    return _end(claim_ids, "expire")


def reject(claim_ids: sa.Select) -> int:
    return _end(claim_ids, "reject")


def _end(claim_ids: sa.Select, action: str) -> int:
    """End the holding claims among `claim_ids` and reopen their tasks, set-based; how many ended."""
    now = utcnow()
    move = CLAIM_MOVES[action]
    ended = db.session.execute(
        sa.update(Claim)
        .where(Claim.id.in_(claim_ids), Claim.status.in_(sorted(move.sources)))
        .values(status=move.target, ended_at=now)
        .returning(Claim.task_id)
    ).scalars().all()
    if ended:
        # A task of a cancelled or completed brief does not reopen: it closes, and what it would
        # have cost is no longer owed, so the refund sweep gives it back to the brand.
        closed = sa.select(Brief.id).where(Brief.id == Task.brief_id, Brief.status.in_(CLOSED)).exists()
        reopen, close = TASK_MOVES["reopen"], TASK_MOVES["close"]
        db.session.execute(
            sa.update(Task).where(Task.id.in_(ended), Task.status.in_(sorted(reopen.sources)))
            .values(status=sa.case((closed, close.target), else_=reopen.target), worker_id=None, updated_at=now)
        )
    return len(ended)
