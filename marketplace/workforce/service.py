"""Workers as others see them: the account, its profile, standing and reputation, for a page in a
fixed number of statements."""

from __future__ import annotations

import statistics
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm

from marketplace.auth.models import Worker
from marketplace.db.clock import utcnow
from marketplace.errors import NotFound
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.ledger import queries as ledger_queries
from marketplace.proofs.models import Submission, SubmissionCheck
from marketplace.workforce import profile, reputation, suspensions
from marketplace.workforce.models import DeviceSighting, Suspension

VELOCITY_WINDOW = timedelta(hours=1)


def open_suspensions(worker_ids: list[str]) -> dict[str, Suspension]:
    if not worker_ids:
        return {}
    return {s.worker_id: s for s in db.session.scalars(
        sa.select(Suspension).where(Suspension.worker_id.in_(worker_ids), Suspension.reinstated_at.is_(None)))}


def views(workers: list[Worker]) -> list[dict]:
    """Each worker as a document: account, languages, social accounts, status, reputation."""
    ids = [w.id for w in workers]
    profiles = profile.profiles(ids)
    reputations = reputation.of_workers(ids)
    suspended = open_suspensions(ids)
    out = []
    for w in workers:
        suspension = suspended.get(w.id)
        out.append({
            "id": w.id, "email": w.email, "display_name": w.display_name, "country": w.country,
            "created_at": w.created_at, **profiles[w.id],
            "status": "suspended" if suspension else "active",
            "suspension": {"reason": suspension.reason, "suspended_at": suspension.suspended_at} if suspension else None,
            "reputation": reputations[w.id],
        })
    return out


def view(worker_id: str) -> dict:
    worker = db.session.get(Worker, worker_id)
    if worker is None:
        raise NotFound(f"No worker {worker_id}.")
    return views([worker])[0]


def list_workers(*, q: str | None, status: str | None, limit: int,
                 cursor: str | None) -> tuple[list[dict], str | None]:
    """Workers newest first; `q` matches part of the email or display name, `status` is active or
    suspended. A page is a fixed number of statements, whatever its length."""
    query = sa.select(Worker)
    if q:
        query = query.where(sa.or_(Worker.email.icontains(q, autoescape=True),
                                   Worker.display_name.icontains(q, autoescape=True)))
    if status:
        suspended = Worker.id.in_(suspensions.suspended_workers())
        query = query.where(suspended if status == "suspended" else ~suspended)
    rows, next_cursor = page(query, Worker, limit=limit, cursor=cursor)
    out = views(rows)
    counts = signal_counts([w["id"] for w in out])
    for w in out:
        w["signal_count"] = counts.get(w["id"], 0)
    return out, next_cursor


def signal_counts(worker_ids: list[str]) -> dict[str, int]:
    """For a page of the worker list: per worker, the other workers seen from one of their devices
    plus their submissions the duplicate check caught (the detail's signals, counted), in two
    grouped statements whatever the page's length."""
    if not worker_ids:
        return {}
    mine, other = sa.orm.aliased(DeviceSighting), sa.orm.aliased(DeviceSighting)
    sharing = db.session.execute(
        sa.select(mine.worker_id, sa.func.count(sa.distinct(other.worker_id)))
        .join(other, sa.and_(other.device == mine.device, other.worker_id != mine.worker_id))
        .where(mine.worker_id.in_(worker_ids)).group_by(mine.worker_id)).all()
    duplicates = db.session.execute(
        sa.select(Submission.worker_id, sa.func.count())
        .join(SubmissionCheck, SubmissionCheck.submission_id == Submission.id)
        .where(Submission.worker_id.in_(worker_ids), SubmissionCheck.name == "duplicate",
               SubmissionCheck.outcome == "fail").group_by(Submission.worker_id)).all()
    counts: dict[str, int] = {}
    for worker_id, n in [*sharing, *duplicates]:
        counts[worker_id] = counts.get(worker_id, 0) + int(n)
    return counts


def detail(worker_id: str) -> dict:
    """One worker as an admin reviews them: the view, balances by currency, every suspension,
    and the fraud signals (one query each)."""
    out = view(worker_id)
    earned = ledger_queries.worker_earnings(worker_id)
    held = ledger_queries.worker_balances(worker_id, "worker_held")
    out["balances"] = [
        {"currency": c, "available_cents": earned.get(c, {}).get("available_cents", 0), "held_cents": held.get(c, 0),
         "in_transit_cents": earned.get(c, {}).get("in_transit_cents", 0),
         "paid_cents": earned.get(c, {}).get("paid_cents", 0)}
        for c in sorted(set(earned) | set(held))
    ]
    out["suspensions"] = list(db.session.scalars(
        sa.select(Suspension).where(Suspension.worker_id == worker_id)
        .order_by(Suspension.suspended_at.desc(), Suspension.id.desc())))
    out["signals"] = signals(worker_id)
    return out


def signals(worker_id: str) -> dict:
    """What suggests one person behind several accounts, or recycled proof."""
    mine, other = sa.orm.aliased(DeviceSighting), sa.orm.aliased(DeviceSighting)
    sharing = list(db.session.scalars(
        sa.select(other.worker_id).distinct()
        .join(mine, sa.and_(mine.device == other.device, mine.worker_id == worker_id))
        .where(other.worker_id != worker_id).order_by(other.worker_id)))
    duplicates = db.session.scalar(
        sa.select(sa.func.count()).select_from(SubmissionCheck)
        .join(Submission, Submission.id == SubmissionCheck.submission_id)
        .where(Submission.worker_id == worker_id, SubmissionCheck.name == "duplicate",
               SubmissionCheck.outcome == "fail"))
    # Velocity: submissions in the last hour, against the median of every worker who submitted in it.
    per_worker = dict(db.session.execute(
        sa.select(Submission.worker_id, sa.func.count())
        .where(Submission.created_at > utcnow() - VELOCITY_WINDOW).group_by(Submission.worker_id)).all())
    return {
        "shared_device_workers": sharing,
        "duplicate_proof_caught": int(duplicates or 0),
        "submissions_last_hour": int(per_worker.get(worker_id, 0)),
        "median_submissions_last_hour": statistics.median(per_worker.values()) if per_worker else 0,
    }
