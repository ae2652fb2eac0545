"""Suspending a worker and reinstating them: who may act (the check the login, claim and submission
paths call), what a suspension ends (their claims waiting for proof) and what it holds (their
available balance, moved to a held account until reinstatement, and skipped by payout batches)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from marketplace.audit import service as audit
from marketplace.auth.models import Worker
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.extensions import db
from marketplace.ledger import queries as ledger_queries
from marketplace.ledger import service as ledger
from marketplace.tasks import lifecycle
from marketplace.tasks.models import Claim
from marketplace.workforce.models import Suspension


class Suspended(Forbidden):
    slug = "suspended"


def suspended_workers() -> sa.Select:
    """The ids of every suspended worker, for another owner's statement (a payout batch skips them)."""
    return sa.select(Suspension.worker_id).where(Suspension.reinstated_at.is_(None))


def open_suspension(worker_id: str) -> Suspension | None:
    return db.session.scalar(
        sa.select(Suspension).where(Suspension.worker_id == worker_id, Suspension.reinstated_at.is_(None)))


SUSPENDED = ("Your account is suspended: you cannot log in, claim tasks or submit proof. "
             "Contact support to appeal.")


def is_suspended(worker_id) -> sa.Exists:
    """True when the worker (a value or a column) is suspended: for a caller's own statement (the
    claim reads it with its other checks, in one round trip, after locking the worker's row)."""
    return suspended_workers().where(Suspension.worker_id == worker_id).exists()


def refuse_if_suspended(worker_id: str) -> None:
    """403 for a suspended worker. Callers that must not race a suspension (a claim) call it
    after locking the worker's row, which suspend() locks too."""
    if db.session.scalar(sa.select(is_suspended(worker_id))):
        raise Suspended(SUSPENDED)


def _lock_worker(worker_id: str) -> None:
    if db.session.scalar(sa.select(Worker.id).where(Worker.id == worker_id).with_for_update()) is None:
        raise NotFound(f"No worker {worker_id}.")


def _move_all(worker_id: str, source, target, kind: str, ref: str) -> dict[str, int]:
    """Move the worker's whole balance of each currency from `source` accounts to `target` ones,
    one balanced entry per currency; the amounts read under the accounts' locks."""
    currencies = list(ledger_queries.worker_balances(worker_id, source("", "").kind))
    accounts = [source(worker_id, c) for c in currencies]
    balances = ledger.locked_balances(accounts)
    amounts = {c: balances[a.code] for c, a in zip(currencies, accounts, strict=True) if balances[a.code] > 0}
    ledger.post_many([
        ledger.Posting(kind, f"{ref}:{currency}", ((source(worker_id, currency), cents),
                                                   (target(worker_id, currency), -cents)))
        for currency, cents in amounts.items()
    ], locked={source(worker_id, c).code: cents for c, cents in amounts.items()})
    return amounts


def suspend(worker_id: str, reason: str, actor: str) -> Suspension:
    """Suspend the worker (409 if they are already): their claims waiting for proof end and the
    tasks reopen, and their available balance is held. Claims whose proof is in stay for review
    (the submission decides them); money they earn lands in available, which batches skip."""
    _lock_worker(worker_id)  # a claim locks this row first: it commits before us, or sees us
    if open_suspension(worker_id) is not None:
        raise Conflict("This worker is already suspended.")
    suspension = Suspension(worker_id=worker_id, reason=reason, suspended_by=actor, suspended_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(suspension)
            db.session.flush()
    except IntegrityError as exc:  # pragma: no cover - the worker's row lock serialises suspensions
        raise Conflict("This worker is already suspended.") from exc
    ended = lifecycle.release(sa.select(Claim.id).where(Claim.worker_id == worker_id, Claim.status == "active"))
    held = _move_all(worker_id, ledger.worker_available, ledger.worker_held, "suspension_hold", suspension.id)
    audit.record(actor, "worker.suspended", worker_id, reason,
                 {"suspension_id": suspension.id, "claims_ended": ended, "held_cents": held})
    db.session.commit()
    return suspension


def reinstate(worker_id: str, reason: str, actor: str) -> Suspension:
    """End the worker's suspension (409 if they are not suspended) and give back what it held."""
    _lock_worker(worker_id)
    suspension = open_suspension(worker_id)
    if suspension is None:
        raise Conflict("This worker is not suspended.")
    suspension.reinstated_at, suspension.reinstated_by, suspension.reinstate_reason = utcnow(), actor, reason
    released = _move_all(worker_id, ledger.worker_held, ledger.worker_available, "suspension_release", suspension.id)
    audit.record(actor, "worker.reinstated", worker_id, reason,
                 {"suspension_id": suspension.id, "released_cents": released})
    db.session.commit()
    return suspension
