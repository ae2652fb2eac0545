"""The record of person-only cases: opened (or opened again) by the owners that find them, in their
transaction; listed and shown with every action taken on them (the audit log's rows on them)."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.audit import service as audit
from marketplace.cases.models import MoneyCase
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.db.upsert import upsert_insert
from marketplace.errors import NotFound
from marketplace.extensions import db
from marketplace.http.pagination import page

# Case moves, written once: who may move a case from which statuses.
CASE_MOVES = {
    "open": ("open", "retrying", "resolved"),  # found (again): a retry that failed, a refund failing later
    "retry": ("open",),
    "resolve": ("open", "retrying"),  # what the case was about settled by itself (a retried refund paid)
    "settle": ("open",),  # a person settled it, with a reason
}


def open_case(kind: str, subject_id: str, detail: str, *, amount_cents: int | None = None,
              currency: str | None = None, stripe_object_id: str | None = None) -> None:
    """Open a case for a person, in the caller's transaction; one per (kind, subject): a case
    already there is opened again with the new detail, unless a person settled it."""
    now = utcnow()
    table = MoneyCase.__table__
    insert = upsert_insert(table).values(
        id=new_id("case"), kind=kind, subject_id=subject_id, status="open", detail=detail[:1000],
        amount_cents=amount_cents, currency=currency, stripe_object_id=stripe_object_id, attempts=0,
        created_at=now, updated_at=now)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=["kind", "subject_id"],
        set_={"status": "open", "detail": insert.excluded.detail, "updated_at": now,
              "stripe_object_id": sa.func.coalesce(insert.excluded.stripe_object_id, table.c.stripe_object_id)},
        where=table.c.status.in_(CASE_MOVES["open"]),
    ))


def resolve_case(kind: str, subject_id: str, *, actor: str, detail: str) -> None:
    """The case's subject settled by itself (a retried refund Stripe made): resolved, in the caller's transaction."""
    now = utcnow()
    closed = db.session.execute(
        sa.update(MoneyCase)
        .where(MoneyCase.kind == kind, MoneyCase.subject_id == subject_id, MoneyCase.status.in_(CASE_MOVES["resolve"]))
        .values(status="resolved", closed_at=now, closed_by=actor, updated_at=now)
        .returning(MoneyCase.id)
        .execution_options(synchronize_session=False)
    ).scalars().all()
    for case_id in closed:
        audit.record(actor, "case.resolved", case_id, None, {"detail": detail[:500]})


def locked(case_id: str) -> MoneyCase:
    case = db.session.get(MoneyCase, case_id, with_for_update=True, populate_existing=True)
    if case is None:
        raise NotFound(f"No case {case_id}.")
    return case


def move(case: MoneyCase, action: str, target: str) -> bool:
    """Move a (locked) case if the table above allows it from its status."""
    if case.status not in CASE_MOVES[action]:
        return False
    case.status, case.updated_at = target, utcnow()
    return True


def list_cases(*, status: str | None, kind: str | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    query = sa.select(MoneyCase)
    if status:
        query = query.where(MoneyCase.status == status)
    if kind:
        query = query.where(MoneyCase.kind == kind)
    rows, next_cursor = page(query, MoneyCase, limit=limit, cursor=cursor)
    return [present(row) for row in rows], next_cursor


def get_case(case_id: str) -> dict:
    case = db.session.get(MoneyCase, case_id)
    if case is None:
        raise NotFound(f"No case {case_id}.")
    return present(case, with_actions=True)


def present(case: MoneyCase, *, with_actions: bool = False) -> dict:
    body = {
        "id": case.id, "kind": case.kind, "subject_id": case.subject_id, "status": case.status,
        "detail": case.detail, "amount_cents": case.amount_cents, "currency": case.currency,
        "stripe_object_id": case.stripe_object_id, "attempts": case.attempts, "created_at": case.created_at,
        "updated_at": case.updated_at, "closed_at": case.closed_at, "closed_by": case.closed_by,
    }
    if with_actions:
        body["actions"] = audit.of_subject(case.id)
    return body
