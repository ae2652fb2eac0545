"""Workers as others see them: the account, its profile, standing and reputation, for a page in a
fixed number of statements."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.auth.models import Worker
from marketplace.errors import NotFound
from marketplace.extensions import db
from marketplace.workforce import profile, reputation
from marketplace.workforce.models import Suspension


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
