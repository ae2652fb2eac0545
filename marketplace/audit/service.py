"""Writing the audit log in the transaction of the change it records, and reading it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from marketplace.audit.models import AuditEvent
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id, sql_new_id
from marketplace.extensions import db
from marketplace.http.pagination import page

REASON_LENGTH = 1000


def record(actor: str, action: str, subject: str, reason: str | None, data: dict | None = None) -> None:
    """One audit row in the caller's transaction: it commits with the change, or not at all."""
    db.session.execute(sa.insert(AuditEvent).values(
        id=new_id("aud"), actor=actor, action=action, subject=subject,
        reason=reason[:REASON_LENGTH] if reason else None, detail=data or {}, created_at=utcnow()))


def record_many(actor: str, action: str, subjects: sa.Select, reason: str | None = None) -> int:
    """One audit row per row of `subjects` (it selects `subject` and `detail`, a JSON value: see
    json_object), in one INSERT … SELECT in the caller's transaction, however many rows."""
    return db.session.execute(insert_many(actor, action, subjects, reason)).rowcount


def insert_many(actor: str, action: str, subjects: sa.Select, reason: str | None = None) -> sa.Insert:
    """record_many's INSERT … SELECT, for a caller that runs it as one part of a bigger statement."""
    rows = subjects.subquery()
    dialect = db.session.get_bind().dialect.name
    return sa.insert(AuditEvent).from_select(
        ["id", "actor", "action", "subject", "reason", "detail", "created_at"],
        sa.select(sql_new_id("aud", dialect), sa.literal(actor), sa.literal(action), rows.c.subject,
                  sa.literal(reason[:REASON_LENGTH] if reason else None, sa.String), rows.c.detail,
                  sa.literal(utcnow())),
    )


def json_object(**columns: sa.ColumnElement) -> sa.ColumnElement:
    """A JSON object built in the database from columns, for record_many's `detail`."""
    args = [part for name, column in columns.items() for part in (sa.literal(name), column)]
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.json_build_object(*args, type_=sa.JSON)
    return sa.func.json_object(*args, type_=sa.JSON)


def list_events(*, actor: str | None, action: str | None, subject: str | None, limit: int,
                cursor: str | None) -> tuple[list[dict], str | None]:
    """Newest first; each filter is an exact match (an action may end in `.*`: every action of that kind)."""
    query = sa.select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True)
                            if action.endswith(".*") else AuditEvent.action == action)
    if subject:
        query = query.where(AuditEvent.subject == subject)
    rows, next_cursor = page(query, AuditEvent, limit=limit, cursor=cursor)
    return [present(row) for row in rows], next_cursor


def of_subject(subject: str) -> list[dict]:
    """Every action on one record, oldest first."""
    return [present(row) for row in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.created_at, AuditEvent.id))]


def present(row: AuditEvent) -> dict:
    return {"id": row.id, "actor": row.actor, "action": row.action, "subject": row.subject,
            "reason": row.reason, "detail": row.detail, "created_at": row.created_at}


# SQLite (the embedded default) enforces append-only with row triggers; `flask demo --reset`, the one
# thing that may empty the log, lifts them while it wipes. (PostgreSQL's TRUNCATE fires no
# UPDATE or DELETE trigger: the reset's TRUNCATE of every table passes, nothing else does.)
SQLITE_TRIGGERS = {
    "audit_events_no_update": "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN "
                              "SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "audit_events_no_delete": "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN "
                              "SELECT RAISE(ABORT, 'audit_events is append-only'); END",
}


@contextmanager
def erasable(conn: sa.Connection) -> Iterator[None]:
    """For wiping a whole SQLite database: its audit triggers lifted for the block, then restored."""
    if conn.dialect.name != "sqlite":
        yield
        return
    for name in SQLITE_TRIGGERS:
        conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
    yield
    for statement in SQLITE_TRIGGERS.values():
        conn.execute(sa.text(statement))
