"""The database misbehaving on purpose: a statement it refuses, a row another transaction holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def database_refuses(app, table: str, event: str, when: str = "true") -> Iterator[None]:
    """Inside the block, PostgreSQL itself raises on `event` (INSERT, UPDATE) of `table` rows
    matching `when` (over NEW): a real database failure midway, not a mock of one."""
    from marketplace.extensions import db

    name = f"refuse_{table}_{event.lower()}"
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
            CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}();"""))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.text(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()"))


@contextmanager
def row_locked(app, table: str, row_id: str) -> Iterator[None]:
    """Another transaction holds `table`'s row `row_id` FOR UPDATE for the duration of the block."""
    from marketplace.extensions import db

    with app.app_context(), db.engine.connect() as other:
        other.execute(sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
        try:
            yield
        finally:
            other.rollback()
