"""Appeals: a worker appeals a rejection within the window; an admin upholds or overturns it.

An overturn approves the submission through the one approval path
(marketplace.reviews.service.approve_overturned) in the same transaction as the appeal's new
status, the worker's notification and the audit event: all of them commit, or none.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.appeals import holds
from marketplace.appeals.models import APPEAL_MOVES, Appeal
from marketplace.audit import service as audit
from marketplace.auth.models import Worker
from marketplace.auth.service import Principal
from marketplace.bonuses.service import promised_cents
from marketplace.briefs.models import CLOSED, Brief
from marketplace.briefs.service import get_brief
from marketplace.db.clock import as_utc, utcnow
from marketplace.errors import Conflict, InvalidInput, NotFound
from marketplace.events import service as events
from marketplace.extensions import db
from marketplace.http.pagination import decode_cursor, encode_cursor, page
from marketplace.notifications import service as notifications
from marketplace.proofs import service as proofs
from marketplace.proofs.models import Submission
from marketplace.reviews import service as reviews

APPEALABLE = holds.APPEALABLE
MAX_MESSAGE = 2000
MAX_REASON = 1000
DECISIONS = tuple(APPEAL_MOVES)
# What the queue embeds of each appeal's submission: its rejection and its evidence, as the
# submission's own view (GET /v1/submissions/{id}) shows them to the same viewer.
EVIDENCE = ("id", "status", "reason_code", "reason", "reasons", "checks", "decided_at", "appealable_until",
            "text", "link", "screenshot_url")


def open_appeal(principal: Principal, submission_id: str, message: str) -> Appeal:
    """The worker's one appeal of their own rejected submission, inside its appeal window.

    The submission row is locked so that two appeals sent at once are told apart here (the
    second sees the first); the unique submission_id is the database's backstop."""
    if not message.strip():
        raise InvalidInput.field("message", "Say why the rejection is wrong.")
    submission = db.session.scalar(
        sa.select(Submission).where(Submission.id == submission_id, Submission.worker_id == principal.id)
        .with_for_update())
    if submission is None:
        raise NotFound(f"No submission {submission_id}.")
    if db.session.scalar(sa.select(Appeal.id).where(Appeal.submission_id == submission.id)) is not None:
        raise Conflict("This submission was appealed already: one appeal per submission.")
    if submission.status not in APPEALABLE:
        raise Conflict(f"Only a rejected or auto-rejected submission can be appealed; this one is {submission.status}.")
    now = utcnow()
    if submission.appealable_until is None or as_utc(submission.appealable_until) <= now:
        raise Conflict("The appeal window of this rejection has ended"
                       + (f" (at {as_utc(submission.appealable_until).isoformat()})."
                          if submission.appealable_until else "."))
    appeal = Appeal(submission_id=submission.id, worker_id=principal.id, brief_id=submission.brief_id,
                    message=message, status="open", created_at=now)
    db.session.add(appeal)
    db.session.commit()
    return appeal


def appeal_of(principal: Principal, submission_id: str) -> Appeal:
    """The worker's appeal of their own submission; 404 when the submission is not theirs or was
    never appealed (the same answer, so it tells nobody which submissions exist)."""
    appeal = db.session.scalar(sa.select(Appeal).where(
        Appeal.submission_id == submission_id, Appeal.worker_id == principal.id))
    if appeal is None:
        raise NotFound(f"No appeal of submission {submission_id}.")
    return appeal


def my_appeals(principal: Principal, *, limit: int, cursor: str | None) -> tuple[list[Appeal], str | None]:
    """The worker's own appeals, newest first, cursor-paged."""
    return page(sa.select(Appeal).where(Appeal.worker_id == principal.id), Appeal, limit=limit, cursor=cursor)


def list_appeals(*, status: str | None, limit: int, cursor: str | None) -> tuple[list[Appeal], str | None]:
    """Oldest first (the queue's order: the longest waiting is decided first), cursor-paged."""
    query = sa.select(Appeal)
    if status:
        query = query.where(Appeal.status == status)
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(Appeal.created_at, Appeal.id) > sa.tuple_(sa.literal(created_at),
                                                                                sa.literal(row_id)))
    rows = list(db.session.scalars(query.order_by(Appeal.created_at, Appeal.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id)


def open_queue_stats(now: datetime | None = None) -> tuple[int, int]:
    """(open appeals, the oldest one's age in whole seconds, 0 when none), in one statement
    through the (status, created_at) index."""
    count, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(Appeal.created_at)).where(Appeal.status == "open")).one()
    if oldest is None:
        return int(count), 0
    return int(count), max(0, int(((now or utcnow()) - as_utc(oldest)).total_seconds()))


def decide(principal: Principal, appeal_id: str, decision: str, reason: str) -> Appeal:
    """Uphold or overturn an open appeal (409 when it was decided already, or when an overturn's
    escrow cannot pay it: then nothing changes and the appeal stays open).

    Locks: the appeal, then its brief (as closing a brief or paying a bonus does), then (in the
    approval path) the submission, its task and the escrow."""
    if decision not in APPEAL_MOVES:
        raise InvalidInput.field("decision", f"Must be one of: {', '.join(DECISIONS)}.")
    if not reason.strip():
        raise InvalidInput.field("reason", "A reason is required.")
    appeal = db.session.scalar(sa.select(Appeal).where(Appeal.id == appeal_id).with_for_update())
    if appeal is None:
        raise NotFound(f"No appeal {appeal_id}.")
    sources, target = APPEAL_MOVES[decision]
    if appeal.status not in sources:
        raise Conflict(f"This appeal was decided already: it is {appeal.status}.")
    actor = f"{principal.role}:{principal.id}"
    if decision == "overturn":
        brief = get_brief(principal, appeal.brief_id, lock=True)

        def kept() -> int:
            # What the overturn must leave: the brief's promises and, once it is closed, what it
            # keeps for its other rejections still inside their appeal window.
            other_holds = holds.held_cents(brief, utcnow(), exclude=appeal.submission_id) if brief.status in CLOSED else 0
            return promised_cents(brief) + other_holds

        try:
            reviews.approve_overturned(appeal.submission_id, actor=actor, promised_cents=kept)
        except Conflict:
            db.session.rollback()
            raise
    now = utcnow()
    appeal.status, appeal.decided_at, appeal.decided_by, appeal.decision_reason = target, now, actor, reason
    notifications.notify(appeal.worker_id, "appeal_decided", appeal.id, message=(
        f"Your appeal was {'upheld: the rejection stands' if target == 'upheld' else 'won: the submission is approved'}."
        f" {reason}"))
    audit.record(actor, f"appeal.{target}", appeal.id, reason,
                 {"submission_id": appeal.submission_id, "brief_id": appeal.brief_id, "worker_id": appeal.worker_id})
    # The brand hears of it with the decision, in its transaction (the outbox), never before or without it.
    events.record_for_brief(appeal.brief_id, events.APPEAL_DECIDED, {
        "id": appeal.id, "object": "appeal", "submission_id": appeal.submission_id, "brief_id": appeal.brief_id,
        "outcome": target, "reason": reason})
    db.session.commit()
    return appeal


def present(appeal: Appeal, now: datetime | None = None) -> dict:
    now = now or utcnow()
    return {
        "id": appeal.id, "status": appeal.status, "submission_id": appeal.submission_id,
        "brief_id": appeal.brief_id, "worker_id": appeal.worker_id, "message": appeal.message,
        "created_at": appeal.created_at,
        "age_seconds": max(0, int((now - as_utc(appeal.created_at)).total_seconds())),
        "decided_at": appeal.decided_at, "decided_by": appeal.decided_by, "decision_reason": appeal.decision_reason,
    }


def present_for_review(appeals: list[Appeal], viewer: Principal, now: datetime | None = None) -> list[dict]:
    """Each appeal as present() shows it, with what its reviewer decides on: the submission's
    reason code and evidence (EVIDENCE of proofs.service.present, the submission view's own
    presenter, for `viewer`), the brief {id, title} and the worker {id, name}.

    A fixed number of statements for the whole page, however long: one for the submissions with
    their briefs' titles and workers' names, and proofs.present's (the checks; for a non-admin,
    which named submissions it may see)."""
    now = now or utcnow()
    ids = [appeal.submission_id for appeal in appeals]
    rows = db.session.execute(
        sa.select(Submission, Brief.title, Worker.display_name)
        .join(Brief, Brief.id == Submission.brief_id).join(Worker, Worker.id == Submission.worker_id)
        .where(Submission.id.in_(ids))).all() if ids else []
    shown = {s["id"]: s for s in proofs.present([row[0] for row in rows], viewer)}
    titles = {row[0].id: row.title for row in rows}
    names = {row[0].id: row.display_name for row in rows}
    items = []
    for appeal in appeals:
        submission = shown[appeal.submission_id]
        items.append({
            **present(appeal, now),
            "submission": {key: submission[key] for key in EVIDENCE},
            "brief": {"id": appeal.brief_id, "title": titles[appeal.submission_id]},
            "worker": {"id": appeal.worker_id, "display_name": names[appeal.submission_id]},
        })
    return items
