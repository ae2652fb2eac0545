"""Where a submission's status changes: every move is a named function here, and the legal moves
are written once, as data. Nothing else writes submissions.status.

validating → needs_review (every check ran and none failed, or the validation was given up on)
           → auto_rejected (a check failed; a copy found later is failed from needs_review too);
needs_review → approved | rejected | revision_requested (a decision); approved → paid (the
transfer carrying its money settled) → approved (that transfer was reversed).

The functions work in the caller's transaction and never commit. What a move does to the claim
and the task (a rejection ends the claim and reopens the task) is asked of marketplace.tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.audit import service as audit
from marketplace.audit.service import json_object
from marketplace.briefs.models import Brief
from marketplace.db.arrays import among
from marketplace.db.clock import utcnow
from marketplace.db.together import together
from marketplace.events import service as events
from marketplace.extensions import db
from marketplace.notifications import service as notifications
from marketplace.proofs.models import ANOTHER_SUBMISSION, SUBMISSION_ID, Submission
from marketplace.tasks import lifecycle as tasks
from marketplace.tasks.lifecycle import Move
from marketplace.tasks.models import Claim, Task

SUBMISSION_MOVES: dict[str, Move] = {
    "pass_checks": Move(frozenset({"validating"}), "needs_review"),
    "give_up": Move(frozenset({"validating"}), "needs_review"),
    "auto_reject": Move(frozenset({"validating", "needs_review"}), "auto_rejected"),
    "approve": Move(frozenset({"needs_review"}), "approved"),
    "reject": Move(frozenset({"needs_review"}), "rejected"),
    "request_revision": Move(frozenset({"needs_review"}), "revision_requested"),
    "mark_paid": Move(frozenset({"approved"}), "paid"),
    "reverse_payment": Move(frozenset({"paid"}), "approved"),
    "overturn": Move(frozenset({"rejected", "auto_rejected"}), "approved"),  # an appeal won
}


class IllegalMove(RuntimeError):
    """A move the table above does not allow: a bug of the caller's, never the client's."""


# What a worker is told of each decision (marketplace.notifications).
DECISION_NOTICES = {"approve": "approved", "reject": "rejected", "request_revision": "revision_requested"}

def appeal_window() -> timedelta:
    """How long after a rejection the worker may appeal it (APPEAL_WINDOW_DAYS)."""
    return timedelta(days=current_app.config.get("APPEAL_WINDOW_DAYS", 7))


def _target(action: str, row: Submission) -> str:
    move = SUBMISSION_MOVES[action]
    if row.status not in move.sources:
        raise IllegalMove(f"cannot {action} submission {row.id}: it is {row.status}")
    return move.target


def start_validating(**columns) -> Submission:
    """A new submission, waiting for its validation job (added to the session, not yet flushed)."""
    submission = Submission(status="validating", **columns)
    db.session.add(submission)
    return submission


def pass_checks(row: Submission, now: datetime) -> None:
    """Every check of the (locked) submission ran and none failed: a person or auto-approval decides."""
    row.status = _target("pass_checks", row)
    row.validated_at = now
    row.rejection_reasons = None
    submissions_changed(events.SUBMISSION_NEEDS_REVIEW, Submission.id == row.id)  # (autoflushes the move)


def pass_checks_of(submission_id: str, now: datetime) -> bool:
    """pass_checks for a submission the caller has locked but not loaded: set-based, no ORM object.
    False when it was no longer validating (nothing moved, no event). The move and its event are
    one statement on PostgreSQL (marketplace.db.together)."""
    move = SUBMISSION_MOVES["pass_checks"]
    change = (sa.update(Submission)
              .where(Submission.id == submission_id, Submission.status.in_(sorted(move.sources)))
              .values(status=move.target, validated_at=now, rejection_reasons=None))
    written = together(change, [getattr(Submission, c) for c in _EVENT_COLUMNS], [
        lambda moved: events.insert_many(events.SUBMISSION_NEEDS_REVIEW, _submission_events(moved))])
    return events.announce(events.SUBMISSION_NEEDS_REVIEW, [(event_id, brand) for event_id, brand in written]) == 1


# The contract's reason code (REASON_CODES) of each check that can fail a submission on its own:
# an automatic rejection carries one, as a reviewer's does. A screenshot fails on its own for an
# upload that is no usable image, or (reason_code_for) for a disclosure the image does not show.
CHECK_REASON_CODES = {
    "duplicate": "duplicate", "near_copy": "duplicate", "disclosure": "missing_disclosure",
    "link": "broken_link", "prohibited": "off_brief", "text": "low_quality", "screenshot": "low_quality",
    "timestamp": "other",
}
# When several checks fail, the rejection's code is the gravest of theirs.
CODE_PRECEDENCE = ("duplicate", "missing_disclosure", "off_brief", "broken_link", "low_quality", "other")


def reason_code_for(check: str, data: dict | None = None) -> str:
    """The reason code of one failed check (its name, and its facts when the name is not enough)."""
    if check == "screenshot" and "disclosure_found" in (data or {}):
        return "missing_disclosure"  # the OCR read the image and found no disclosure on it
    return CHECK_REASON_CODES.get(check, "other")


def rejection_reason(reasons: list[dict]) -> tuple[str, str]:
    """(reason code, evidence) of an automatic rejection from its failed checks' {check, detail,
    reason_code?}: the gravest code, and every failed check's detail in words. The evidence names
    no other submission (it goes to the worker, and in events to the brand, as it is); the checks
    and `reasons` keep the ids, for admins."""
    codes = [r.get("reason_code") or reason_code_for(r["check"]) for r in reasons] or ["other"]
    code = min(codes, key=lambda c: CODE_PRECEDENCE.index(c) if c in CODE_PRECEDENCE else len(CODE_PRECEDENCE))
    evidence = "; ".join(f"{r['check'].replace('_', ' ')} check failed: {r.get('detail') or 'no detail'}"
                         for r in reasons)
    evidence = SUBMISSION_ID.sub(ANOTHER_SUBMISSION, evidence)
    return code, evidence or "A check failed."


def auto_reject(rows: list[Submission], reasons: dict[str, list[dict]]) -> None:
    """Reject (locked) submissions for the checks that failed, each with its reasons: their claims
    end as rejected and their tasks reopen, in one statement for all of them. Each carries its
    reason code and its evidence (reason_code, reason), as a reviewer's rejection does."""
    if not rows:
        return
    now = utcnow()
    for row in rows:
        row.status, row.validated_at = _target("auto_reject", row), row.validated_at or now
        row.appealable_until = now + appeal_window()
        row.rejection_reasons = [*(row.rejection_reasons or []), *reasons[row.id]]
        row.reason_code, row.reason = rejection_reason(row.rejection_reasons)
        failed = sorted({reason["check"] for reason in reasons[row.id]})
        notifications.notify(row.worker_id, "rejected", row.id, reason_code=row.reason_code,
                             message=f"Rejected automatically: the {', '.join(failed)} check failed. "
                                     "The submission shows what was found.")
    tasks.reject(sa.select(Claim.id).where(Claim.id.in_([row.claim_id for row in rows])))
    submissions_changed(events.SUBMISSION_AUTO_REJECTED, Submission.id.in_([row.id for row in rows]))


def give_up_validating(stuck: sa.ColumnElement[bool], now: datetime) -> list[str]:
    """Submissions (matching `stuck`) whose validation will not be tried again go to a person."""
    move = SUBMISSION_MOVES["give_up"]
    given_up = list(db.session.execute(
        sa.update(Submission).where(stuck, Submission.status.in_(sorted(move.sources)))
        .values(status=move.target, validated_at=now).returning(Submission.id)
    ).scalars().all())
    if given_up:
        submissions_changed(events.SUBMISSION_NEEDS_REVIEW, Submission.id.in_(given_up))
    return given_up


def decide(rows: list, decision: str, *, now: datetime, actor: str, reason_code: str | None,
           reason: str | None, revision_deadline: timedelta) -> None:
    """A person's (or auto-approval's) decision on locked needs_review submissions, set-based.

    `rows` carry id, task_id and claim_id. The submissions move, and from the rows that moved, in
    one statement on PostgreSQL (marketplace.db.together): each worker's notice, the audit row
    (who decided, and why), the brand's event, and, for an approval, the tasks. A rejection then
    ends the claims and reopens the tasks; a revision request keeps the claim held (submitted), so
    the worker can submit again on it.
    """
    move = SUBMISSION_MOVES[decision]  # a decision is named as its move
    ids = [r.id for r in rows]
    change = (
        sa.update(Submission)
        .where(among(Submission.id, ids), Submission.status.in_(sorted(move.sources)))
        .values(status=move.target, decided_at=now, decided_by=actor, reason_code=reason_code, reason=reason,
                revision_deadline=now + revision_deadline if decision == "request_revision" else None,
                appealable_until=now + appeal_window() if decision == "reject" else None)
    )
    moved = (Submission.id, Submission.worker_id, Submission.brief_id, Submission.task_id, Submission.status,
             Submission.reason_code, Submission.reason)
    event_type = f"submission.{move.target}"

    def notices(m):
        return notifications.submissions_decided(DECISION_NOTICES[decision], sa.select(
            m.c.id, m.c.worker_id, m.c.reason_code, m.c.reason.label("message")))

    def audit_rows(m):
        return audit.insert_many(actor, f"submission.{move.target}", sa.select(
            m.c.id.label("subject"),
            json_object(brief_id=m.c.brief_id, worker_id=m.c.worker_id, reason_code=m.c.reason_code).label("detail"),
        ), reason=reason)

    def task_moves(m):
        return tasks.approve_tasks(sa.select(m.c.task_id), now)

    def brand_events(m):  # last: what it returns (the events written) is what the webhooks fan out
        return events.insert_many(event_type, _submission_events(m))

    followers = [notices, audit_rows, *([task_moves] if decision == "approve" else []), brand_events]
    written = together(change, moved, followers)
    events.announce(event_type, [(event_id, brand_id) for event_id, brand_id in written])
    if decision == "reject":
        tasks.reject(sa.select(Claim.id).where(among(Claim.id, [r.claim_id for r in rows])))


def overturn(submission_id: str, *, now: datetime, actor: str) -> None:
    """A (locked) rejected or auto-rejected submission whose appeal was won: approved now, by the
    admin who overturned it, and no longer appealable; the rejection's reason stays on record. Its money and its task are the approval
    path's (marketplace.reviews.service.approve_overturned)."""
    move = SUBMISSION_MOVES["overturn"]
    updated = db.session.execute(
        sa.update(Submission)
        .where(Submission.id == submission_id, Submission.status.in_(sorted(move.sources)))
        .values(status=move.target, decided_at=now, decided_by=actor, appealable_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        raise IllegalMove(f"cannot overturn submission {submission_id}: it is not rejected")


def mark_paid(submission_ids: sa.Select | list[str], now: datetime | None = None) -> int:
    """Approved submissions whose money reached their worker, and their tasks with them: two
    statements however many (`submission_ids` may be a select of ids)."""
    move, now = SUBMISSION_MOVES["mark_paid"], now or utcnow()
    paid = db.session.execute(
        sa.update(Submission).where(Submission.id.in_(submission_ids), Submission.status.in_(sorted(move.sources)))
        .values(status=move.target, paid_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if paid:
        tasks.mark_paid(_own_tasks(sa.and_(Submission.id.in_(submission_ids), Submission.status == move.target)), now)
    return paid


def _own_tasks(where: sa.ColumnElement[bool]) -> sa.Select:
    """The tasks of the submissions matching `where` that are still their workers' own: an overturned
    submission paid from unspent escrow keeps pointing at a task someone else has taken since, and
    paying (or reversing) it must not move that other worker's task."""
    return (sa.select(Submission.task_id).join(Task, Task.id == Submission.task_id)
            .where(where, Task.worker_id == Submission.worker_id))


def reverse_payment(submission_ids: sa.Select | list[str], reversal: str, now: datetime | None = None) -> int:
    """Paid submissions whose transfer was taken back: approved again (their money is available to
    the next batch), with the reversal shown; their tasks go back to approved too."""
    move, now = SUBMISSION_MOVES["reverse_payment"], now or utcnow()
    tasks.reverse_payment(_own_tasks(sa.and_(Submission.id.in_(submission_ids),
                                             Submission.status.in_(sorted(move.sources)))), now)
    return db.session.execute(
        sa.update(Submission).where(Submission.id.in_(submission_ids), Submission.status.in_(sorted(move.sources)))
        .values(status=move.target, paid_at=None, reversed_at=now, reversal=reversal[:500])
        .execution_options(synchronize_session=False)
    ).rowcount


def submissions_changed(type: str, *where: sa.ColumnElement[bool]) -> int:
    """The brands' events for submissions that just moved (those matching `where`), in one
    INSERT … SELECT: a chunk of 2,500 is one statement, not 2,500."""
    moved = sa.select(*(getattr(Submission, c) for c in _EVENT_COLUMNS)).where(*where).subquery("moved")
    return events.record_many(type, _submission_events(moved))


# What a submission's event says of it, read from the submissions that moved.
_EVENT_COLUMNS = ("id", "brief_id", "task_id", "worker_id", "status", "reason_code", "reason")


def _submission_events(moved: sa.FromClause) -> sa.Select:
    """(brand_id, object) of each moved submission (a FROM with _EVENT_COLUMNS), for events."""
    return sa.select(
        Brief.brand_id.label("brand_id"),
        json_object(id=moved.c.id, object=sa.literal("submission"), brief_id=moved.c.brief_id,
                    task_id=moved.c.task_id, worker_id=moved.c.worker_id, status=moved.c.status,
                    reason_code=moved.c.reason_code, reason=moved.c.reason).label("object"),
    ).select_from(moved).join(Brief, Brief.id == moved.c.brief_id)
