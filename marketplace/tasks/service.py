"""Claiming and releasing tasks. A claim is taken under row locks so no task goes to two workers."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.auth.models import Worker
from marketplace.briefs.models import Brief, Task, TaskGroup
from marketplace.errors import Conflict, NotFound
from marketplace.extensions import db
from marketplace.tasks.models import HOLDING, Claim
from marketplace.timefmt import as_utc, utcnow


def new_tracked_code() -> str:
    return secrets.token_urlsafe(9)  # 72 random bits, URL-safe, 12 characters


def claimable_group(group_id: str) -> tuple[TaskGroup, Brief]:
    """The group if a worker may claim from it now: live brief, inside its window, not paused."""
    row = db.session.execute(
        sa.select(TaskGroup, Brief).join(Brief, Brief.id == TaskGroup.brief_id).where(TaskGroup.id == group_id)
    ).first()
    if row is None:
        raise NotFound(f"No task group {group_id}.")
    group, brief = row
    now = utcnow()
    if brief.status != "live":
        raise Conflict(f"The brief is {brief.status}; tasks can be claimed only while it is live.")
    if not (as_utc(brief.starts_at) <= now < as_utc(brief.ends_at)):
        raise Conflict("The brief is outside its time window.")
    if group.paused_reason:
        raise Conflict(f"This task group is paused: {group.paused_reason}")
    return group, brief


def claim(worker_id: str, group_id: str) -> Claim:
    """Reserve one open task of the group for the worker, or 409.

    The worker's row is locked first, so one worker's concurrent claims are counted one after
    another against max_per_worker; the task is picked with FOR UPDATE SKIP LOCKED, so
    concurrent workers each take a different open task without waiting on one another.
    """
    group, brief = claimable_group(group_id)
    db.session.execute(sa.select(Worker.id).where(Worker.id == worker_id).with_for_update())
    if group.max_per_worker is not None:
        held = db.session.scalar(
            sa.select(sa.func.count()).select_from(Claim)
            .where(Claim.worker_id == worker_id, Claim.group_id == group.id, Claim.status.in_(HOLDING))
        )
        if held >= group.max_per_worker:
            db.session.rollback()
            raise Conflict(f"You already hold {held} of this group's tasks, its limit per worker.")
    task_id = db.session.scalar(
        sa.select(Task.id)
        .where(Task.group_id == group.id, Task.status == "open")
        .order_by(Task.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if task_id is None:
        db.session.rollback()
        raise Conflict("No open task is left in this group.")
    now = utcnow()
    db.session.execute(
        sa.update(Task).where(Task.id == task_id).values(status="claimed", worker_id=worker_id, updated_at=now)
    )
    new_claim = Claim(
        task_id=task_id, group_id=group.id, brief_id=brief.id, worker_id=worker_id,
        tracked_code=new_tracked_code(), status="active", claimed_at=now,
        expires_at=now + timedelta(minutes=current_app.config["CLAIM_TTL_MINUTES"]),
    )
    db.session.add(new_claim)
    db.session.commit()
    return new_claim


def active_claim(worker_id: str, task_id: str, *, lock: bool = False) -> Claim:
    """The worker's active claim on the task; someone else's task is 'not found'."""
    query = sa.select(Claim).where(Claim.task_id == task_id, Claim.worker_id == worker_id,
                                   Claim.status.in_(HOLDING))
    if lock:
        query = query.with_for_update()
    found = db.session.scalar(query)
    if found is None:
        raise NotFound(f"You hold no claim on task {task_id}.")
    return found


def release(worker_id: str, task_id: str) -> Claim:
    held = active_claim(worker_id, task_id, lock=True)
    if held.status != "active":
        raise Conflict("Proof is already in for this task; it can no longer be released.")
    end_claims(sa.select(Claim.id).where(Claim.id == held.id), "released")
    db.session.commit()
    return held


def end_claims(claim_ids: sa.Select, status: str) -> int:
    """End active claims (released/expired/rejected) and reopen their tasks, set-based."""
    now = utcnow()
    ended = db.session.execute(
        sa.update(Claim)
        .where(Claim.id.in_(claim_ids), Claim.status.in_(HOLDING))
        .values(status=status, ended_at=now)
        .returning(Claim.task_id)
    ).scalars().all()
    if ended:
        db.session.execute(
            sa.update(Task).where(Task.id.in_(ended), Task.status.in_(["claimed", "submitted"]))
            .values(status="open", worker_id=None, updated_at=now)
        )
    return len(ended)
