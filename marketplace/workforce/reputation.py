"""A worker's reputation, computed in SQL from our records (submissions, claims), never stored.

approved, rejected, auto_rejected: every submission so decided; approval_rate: approved share of
the last RECENT_DECIDED decided submissions, null below MIN_DECIDED; on_time_rate: of the claims
that ended with proof or ran out, the share with proof in time (claims given back do not count);
appeals_won: the worker's overturned appeals. The same expressions serve one worker (GET /v1/me), a page of
workers (admin lists, a brief's report) and the claim's eligibility check, correlated on a
worker id column.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from marketplace.appeals.models import Appeal
from marketplace.auth.models import Worker
from marketplace.db.arrays import among
from marketplace.extensions import db
from marketplace.proofs.models import Submission
from marketplace.tasks.models import Claim

RECENT_DECIDED = 100
MIN_DECIDED = 5
APPROVED = ("approved", "paid")
DECIDED = ("approved", "paid", "rejected", "auto_rejected")


def _count(worker_id, statuses: tuple[str, ...]) -> sa.ScalarSelect:
    return (sa.select(sa.func.count()).select_from(Submission)
            .where(Submission.worker_id == worker_id, among(Submission.status, statuses)).scalar_subquery())


def recent_decided(worker_id) -> sa.Subquery:
    """The worker's last RECENT_DECIDED decided submissions (newest by submission), through the
    worker's (worker_id, created_at) index."""
    return (sa.select(Submission.status).where(Submission.worker_id == worker_id, among(Submission.status, DECIDED))
            .order_by(Submission.created_at.desc()).limit(RECENT_DECIDED).subquery("recent"))


def approval_rate(worker_id) -> sa.ScalarSelect:
    """Approved share of the recent decided submissions as a numeric, NULL below MIN_DECIDED."""
    recent = recent_decided(worker_id)
    approved = sa.func.count().filter(among(recent.c.status, APPROVED))
    rate = sa.case((sa.func.count() >= MIN_DECIDED,
                    sa.cast(approved, sa.Numeric) / sa.func.nullif(sa.func.count(), 0)), else_=None)
    return sa.select(rate).select_from(recent).scalar_subquery()


def approved_count(worker_id) -> sa.ScalarSelect:
    return _count(worker_id, APPROVED)


def _on_time(worker_id) -> tuple[sa.ScalarSelect, sa.ScalarSelect]:
    ended = sa.select(sa.func.count()).select_from(Claim).where(Claim.worker_id == worker_id)
    on_time = ended.where(Claim.status.in_(("submitted", "rejected"))).scalar_subquery()
    late = ended.where(Claim.status == "expired").scalar_subquery()
    return on_time, late


def columns(worker_id) -> list[sa.Label]:
    """The reputation of the worker `worker_id` names (a column or a bound value), as labelled
    scalar subqueries to select with anything else."""
    on_time, late = _on_time(worker_id)
    return [
        _count(worker_id, APPROVED).label("approved"),
        _count(worker_id, ("rejected",)).label("rejected"),
        _count(worker_id, ("auto_rejected",)).label("auto_rejected"),
        approval_rate(worker_id).label("approval_rate"),
        on_time.label("claims_on_time"),
        late.label("claims_late"),
        (sa.select(sa.func.count()).select_from(Appeal)
         .where(Appeal.worker_id == worker_id, Appeal.status == "overturned").scalar_subquery()).label("appeals_won"),
    ]


def as_dict(row, since) -> dict:
    """A row of `columns` (and the worker's sign-up time) as the reputation document."""
    ended = (row.claims_on_time or 0) + (row.claims_late or 0)
    rate = row.approval_rate
    return {
        "approved": int(row.approved or 0), "rejected": int(row.rejected or 0),
        "auto_rejected": int(row.auto_rejected or 0),
        "approval_rate": None if rate is None else round(float(rate), 4),
        "on_time_rate": round(row.claims_on_time / ended, 4) if ended else None,
        "appeals_won": int(row.appeals_won or 0),
        "since": since,
    }


def of_workers(worker_ids: Iterable[str]) -> dict[str, dict]:
    """worker id → reputation, for a page of workers in one statement."""
    ids = sorted(set(worker_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Worker.id, Worker.created_at, *columns(Worker.id)).where(Worker.id.in_(ids))
    ).all()
    return {row.id: as_dict(row, row.created_at) for row in rows}


def of_worker(worker_id: str) -> dict:
    return of_workers([worker_id])[worker_id]
