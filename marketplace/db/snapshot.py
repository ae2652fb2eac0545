"""Reads that must agree with one another: one REPEATABLE READ, read-only transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from marketplace.extensions import db


@contextmanager
def snapshot() -> Iterator[None]:
    """Every query inside sees the database as of its first one, on PostgreSQL (SQLite's reader
    sees one state per transaction anyway). What the request did before (the credential's
    bookkeeping) is committed first, since the isolation level is set only at a transaction's
    start; the snapshot is rolled back on the way out, so nothing can be written inside it."""
    db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    try:
        yield
    finally:
        db.session.rollback()
