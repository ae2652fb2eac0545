"""One change and what follows from it, written as one statement where the database allows.

A bulk decision moves thousands of submissions and, from the same rows, writes their notices,
their audit rows and their events, and moves their tasks. Each of those is its owner's statement
(notifications, audit, events, tasks), built from the rows the change moved. On PostgreSQL they
run as data-modifying CTEs of one statement that read the change's RETURNING: the moved rows are
found once, not once a statement, and bound once. SQLite has no DML in WITH: there the change runs
first (RETURNING the ids it moved) and each follower reads those rows again, one statement after
another, in the same order and the same transaction, to the same effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from marketplace.extensions import db

Follower = Callable[[sa.FromClause], sa.Insert | sa.Update]


def together(change: sa.Update, returning: Sequence[sa.ColumnElement],
             followers: Sequence[Follower]) -> list[sa.Row]:
    """Run `change` and each follower's statement (built from a FROM of the rows it moved, with the
    `returning` columns: table columns, the first its primary key), in the caller's transaction;
    the rows the last follower returns (it must have a RETURNING). Only rows the change itself
    moved are followed, on either database.

    A follower reads `moved` and tables no other part writes (briefs, say), never the table the
    change writes: on PostgreSQL every part sees the database as it was before the statement, on
    SQLite as it is after the parts before it."""
    assert followers, "together() needs at least one follower (the last one RETURNING)"
    if db.session.get_bind().dialect.name == "postgresql":
        moved = change.returning(*returning).cte("moved")
        parts = [follower(moved).cte(f"then_{i}") for i, follower in enumerate(followers)]
        *rest, last = parts
        return db.session.execute(sa.select(last).add_cte(*rest)).all()
    key = returning[0]
    ids = list(db.session.execute(change.returning(key).execution_options(synchronize_session=False)).scalars())
    if not ids:
        return []
    moved = sa.select(*returning).where(key.in_(ids)).subquery("moved")
    results = [db.session.execute(follower(moved).execution_options(synchronize_session=False))
               for follower in followers]
    return results[-1].all()
