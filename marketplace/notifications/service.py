"""Writing, listing and reading notifications, and e-mailing the pending ones."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id, sql_new_id
from marketplace.db.upsert import upsert_insert
from marketplace.errors import InvalidInput
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.notifications import email
from marketplace.notifications.models import KINDS, Notification

EMAIL_BATCH = 100
EMAIL_MAX_ATTEMPTS = 8  # 1, 2, 4 … 64 minutes apart: about two hours of an SMTP server down
MAX_READ_IDS = 500


def _email_state() -> str:
    return "pending" if current_app.config.get("SMTP_URL") else "none"


def submissions_decided(kind: str, submissions: sa.Select) -> sa.Insert:
    """What tells each worker about their decided submissions: one INSERT … SELECT, for the caller to
    run in its transaction (on its own, or as one part of a bigger statement: see
    marketplace.db.together). `submissions` selects (id, worker_id, reason_code, message) rows."""
    assert kind in KINDS
    rows = submissions.subquery()
    dialect = db.session.get_bind().dialect.name
    insert = upsert_insert(Notification.__table__).from_select(
        ["id", "worker_id", "kind", "subject_id", "reason_code", "message", "created_at", "email_state",
         "email_attempts"],
        sa.select(sql_new_id("ntf", dialect), rows.c.worker_id, sa.literal(kind), rows.c.id, rows.c.reason_code,
                  sa.func.substr(rows.c.message, 1, 2000), sa.literal(utcnow()), sa.literal(_email_state()),
                  sa.literal(0))
        # SQLite reads `SELECT … FROM x ON CONFLICT` as a join's ON without a WHERE between them.
        .where(rows.c.id.is_not(None)),
    ).on_conflict_do_nothing(index_elements=["kind", "subject_id"])
    return insert


def payouts_paid(items: sa.Select) -> None:
    """Tell each worker about their paid payout items, in one INSERT … SELECT in the caller's
    transaction. `items` selects (id, worker_id, amount_cents, currency) rows (the payouts owner's)."""
    rows = items.subquery()
    dialect = db.session.get_bind().dialect.name
    insert = upsert_insert(Notification.__table__).from_select(
        ["id", "worker_id", "kind", "subject_id", "amount_cents", "currency", "created_at", "email_state",
         "email_attempts"],
        sa.select(sql_new_id("ntf", dialect), rows.c.worker_id, sa.literal("paid"), rows.c.id, rows.c.amount_cents,
                  rows.c.currency, sa.literal(utcnow()), sa.literal(_email_state()), sa.literal(0))
        .where(rows.c.id.is_not(None)),  # see submissions_decided: SQLite's ON CONFLICT after a SELECT
    ).on_conflict_do_nothing(index_elements=["kind", "subject_id"])
    db.session.execute(insert)


def notify(worker_id: str, kind: str, subject_id: str, *, reason_code: str | None = None,
           message: str | None = None, amount_cents: int | None = None, currency: str | None = None) -> None:
    """One notification (a payment, a bonus, an appeal's decision), once per subject and kind."""
    notify_many(kind, [{"worker_id": worker_id, "subject_id": subject_id, "reason_code": reason_code,
                        "message": message, "amount_cents": amount_cents, "currency": currency}])


def notify_many(kind: str, rows: list[dict]) -> None:
    """Many notifications of one kind in one INSERT (each once per subject), in the caller's
    transaction. Each row: worker_id, subject_id, and optionally reason_code, message,
    amount_cents, currency."""
    assert kind in KINDS
    if not rows:
        return
    now, state = utcnow(), _email_state()
    values = [{"id": new_id("ntf"), "worker_id": r["worker_id"], "kind": kind, "subject_id": r["subject_id"],
               "reason_code": r.get("reason_code"), "message": (r.get("message") or "")[:2000] or None,
               "amount_cents": r.get("amount_cents"), "currency": r.get("currency"), "created_at": now,
               "email_state": state, "email_attempts": 0} for r in rows]
    db.session.execute(upsert_insert(Notification.__table__).values(values)
                       .on_conflict_do_nothing(index_elements=["kind", "subject_id"]))


def list_for(worker_id: str, *, unread: bool, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    query = sa.select(Notification).where(Notification.worker_id == worker_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    rows, next_cursor = page(query, Notification, limit=limit, cursor=cursor)
    return [present(row) for row in rows], next_cursor


def unread_count(worker_id: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                             .where(Notification.worker_id == worker_id, Notification.read_at.is_(None)))


def mark_read(worker_id: str, ids: list[str] | None) -> int:
    """Mark the worker's notifications read: these ids, or all (ids None). Another worker's ids are
    left alone, as if unknown; returns how many changed."""
    if ids is not None and len(ids) > MAX_READ_IDS:
        raise InvalidInput.field("ids", f"At most {MAX_READ_IDS} ids a call.")
    statement = sa.update(Notification).where(Notification.worker_id == worker_id, Notification.read_at.is_(None))
    if ids is not None:
        statement = statement.where(Notification.id.in_(ids))
    changed = db.session.execute(statement.values(read_at=utcnow()).execution_options(
        synchronize_session=False)).rowcount
    db.session.commit()
    return changed


TITLES = {
    "approved": "Your submission was approved",
    "rejected": "Your submission was rejected",
    "revision_requested": "A revision was requested",
    "paid": "You were paid",
    "bonus": "You got a bonus",
    "appeal_decided": "Your appeal was decided",
}


def present(row: Notification) -> dict:
    return {
        "id": row.id, "kind": row.kind, "subject_id": row.subject_id, "title": _title(row),
        "reason_code": row.reason_code, "message": row.message, "amount_cents": row.amount_cents,
        "currency": row.currency, "created_at": row.created_at, "read_at": row.read_at,
        "read": row.read_at is not None,
    }


def _title(row: Notification) -> str:
    if row.amount_cents is not None and row.currency:
        return f"{TITLES[row.kind]}: {row.amount_cents / 100:.2f} {row.currency.upper()}"
    return TITLES[row.kind]


def _body(row: Notification, name: str) -> str:
    lines = [f"Hello {name},", "", _title(row) + "."]
    if row.reason_code:
        lines.append(f"Reason: {row.reason_code.replace('_', ' ')}")
    if row.message:
        lines.append(row.message)
    if row.kind in ("rejected",):
        lines += ["", "You can see the evidence, and appeal, in the app."]
    lines += ["", f"({row.kind} · {row.subject_id})"]
    return "\n".join(lines)


def send_pending_emails(now: datetime | None = None) -> dict:
    """E-mail the notifications that are due, a batch at a time; a failure is retried with back-off
    and, after EMAIL_MAX_ATTEMPTS, given up (the notification stays in the worker's feed).

    The batch is leased, not locked, while the mail server is talked to: its rows are pushed
    EMAIL_LEASE ahead and committed first, so a slow SMTP server holds no row lock, and a sweep that
    dies mid-send leaves rows that come due again when the lease ends (mail is sent at least once)."""
    from marketplace.auth.service import worker_contacts

    url = current_app.config.get("SMTP_URL")
    if not url:
        return {"sent": 0, "failed": 0}
    now = now or utcnow()
    rows = _lease_due(now)
    if not rows:
        return {"sent": 0, "failed": 0}
    contacts = worker_contacts(sorted({row.worker_id for row in rows}))
    db.session.commit()  # the leased rows are snapshots now; no transaction stays open while we mail
    try:
        outcomes = email.send(url, current_app.config["SMTP_FROM"], [
            (contacts[row.worker_id][0], _title(row), _body(row, contacts[row.worker_id][1])) for row in rows])
    except (OSError, email.smtplib.SMTPException) as exc:
        outcomes = [f"{type(exc).__name__}: {exc}"[:500]] * len(rows)
    return _record_outcomes(rows, outcomes, now)


EMAIL_LEASE = timedelta(minutes=5)


def _lease_due(now: datetime) -> list[Notification]:
    due = (sa.select(Notification.id).where(Notification.email_state == "pending",
                                            sa.or_(Notification.email_next_at.is_(None),
                                                   Notification.email_next_at <= now))
           .order_by(Notification.created_at, Notification.id).limit(EMAIL_BATCH))
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # two sweeps never lease one notification twice
    ids = list(db.session.scalars(due))
    if not ids:
        db.session.rollback()
        return []
    db.session.execute(sa.update(Notification).where(Notification.id.in_(ids))
                       .values(email_next_at=now + EMAIL_LEASE).execution_options(synchronize_session=False))
    rows = list(db.session.scalars(sa.select(Notification).where(Notification.id.in_(ids))
                                   .order_by(Notification.created_at, Notification.id)))
    db.session.expunge_all()
    return rows


def _record_outcomes(rows: list[Notification], outcomes: list[str | None], now: datetime) -> dict:
    sent = [row.id for row, error in zip(rows, outcomes, strict=True) if error is None]
    if sent:
        db.session.execute(sa.update(Notification).where(Notification.id.in_(sent)).values(
            email_state="sent", emailed_at=utcnow(), email_error=None, email_next_at=None)
            .execution_options(synchronize_session=False))
    for row, error in zip(rows, outcomes, strict=True):
        if error is None:
            continue
        attempts = row.email_attempts + 1
        given_up = attempts >= EMAIL_MAX_ATTEMPTS
        db.session.execute(sa.update(Notification).where(Notification.id == row.id).values(
            email_attempts=attempts, email_error=error, email_state="failed" if given_up else "pending",
            email_next_at=None if given_up else now + timedelta(minutes=2 ** (attempts - 1)))
            .execution_options(synchronize_session=False))
    db.session.commit()
    return {"sent": len(sent), "failed": len(rows) - len(sent)}
