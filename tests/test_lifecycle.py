"""The status moves of tasks, claims and submissions, as their owners write them: the legal ones
happen, set-based, and an illegal one changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.factories import sign_up_worker
from tests.factories.payouts import approved_work


def _statuses(db_session, brief_id: str) -> list[tuple[str, str]]:
    db_session.rollback()
    return [tuple(r) for r in db_session.execute(sa.text(
        "SELECT s.status, t.status FROM submissions s JOIN tasks t ON t.id = s.task_id "
        "WHERE s.brief_id = :b ORDER BY s.id"), {"b": brief_id})]


def test_mark_paid_moves_approved_submissions_and_their_tasks_only(app, client, standin, db_session):
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle

    workers = [(w["id"], t) for w, t in (sign_up_worker(client) for _ in range(2))]
    paid_brief = approved_work(app, client, standin, workers, 300)
    waiting_brief = approved_work(app, client, standin, workers, 300, status="needs_review")
    ids = [r[0] for r in db_session.execute(sa.text(
        "SELECT id FROM submissions WHERE brief_id IN (:a, :b)"), {"a": paid_brief, "b": waiting_brief})]
    with app.app_context():
        assert lifecycle.mark_paid(ids) == 2  # the two approved ones; needs_review is not payable
        assert lifecycle.mark_paid(ids) == 0  # paid once: a second settle moves nothing
        db.session.commit()
    assert _statuses(db_session, paid_brief) == [("paid", "paid")] * 2
    assert _statuses(db_session, waiting_brief) == [("needs_review", "submitted")] * 2


def test_an_illegal_move_on_a_loaded_submission_is_refused(app, client, standin, db_session):
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle
    from marketplace.proofs.models import Submission

    worker, token = sign_up_worker(client)
    brief_id = approved_work(app, client, standin, [(worker["id"], token)], 300)
    with app.app_context():
        row = db.session.scalar(sa.select(Submission).where(Submission.brief_id == brief_id))
        with pytest.raises(lifecycle.IllegalMove):
            lifecycle.pass_checks(row, row.created_at)  # approved work does not go back to review
        db.session.rollback()
    assert _statuses(db_session, brief_id) == [("approved", "approved")]


def test_pass_checks_of_moves_only_a_validating_submission_and_records_its_event(app, client, standin, db_session):
    """The set-based pass (the validation job's): a submission no longer validating (already in
    review here) is not moved and gets no event; a validating one goes to needs_review with one
    event showing it."""
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle

    worker, token = sign_up_worker(client)
    brief_id = approved_work(app, client, standin, [(worker["id"], token)], 300, status="needs_review")
    sub_id = db_session.execute(sa.text("SELECT id FROM submissions WHERE brief_id = :b"), {"b": brief_id}).scalar_one()

    def needs_review_events() -> list:
        db_session.rollback()
        return list(db_session.execute(sa.text(
            "SELECT object FROM events WHERE type = 'submission.needs_review' AND object->>'id' = :id"),
            {"id": sub_id}).scalars())

    before = needs_review_events()
    with app.app_context():
        assert lifecycle.pass_checks_of(sub_id, utcnow()) is False
        db.session.commit()
    assert needs_review_events() == before

    db_session.execute(sa.text("UPDATE submissions SET status = 'validating' WHERE id = :id"), {"id": sub_id})
    db_session.commit()
    with app.app_context():
        assert lifecycle.pass_checks_of(sub_id, utcnow()) is True
        db.session.commit()
    assert _statuses(db_session, brief_id)[0][0] == "needs_review"
    [event] = [e for e in needs_review_events() if e not in before]
    assert event["status"] == "needs_review" and event["object"] == "submission" and event["brief_id"] == brief_id


def test_every_move_names_known_statuses():
    from marketplace.proofs.lifecycle import SUBMISSION_MOVES
    from marketplace.proofs.models import SUBMISSION_STATUSES
    from marketplace.tasks.lifecycle import CLAIM_MOVES, TASK_MOVES
    from marketplace.tasks.models import CLAIM_STATUSES

    task_statuses = {"open", "claimed", "submitted", "approved", "paid", "cancelled"}
    for moves, known in ((TASK_MOVES, task_statuses), (CLAIM_MOVES, set(CLAIM_STATUSES)),
                         (SUBMISSION_MOVES, set(SUBMISSION_STATUSES))):
        for action, move in moves.items():
            assert move.sources and move.sources <= known and move.target in known, action
