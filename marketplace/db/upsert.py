"""The upsert builder: INSERT … ON CONFLICT for the database the session is bound to."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from marketplace.extensions import db


def upsert_insert(table):
    """INSERT for `table` on the session's database, with its ON CONFLICT clauses (PostgreSQL in
    production, SQLite in the embedded default: both spell them the same way)."""
    module = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table)
