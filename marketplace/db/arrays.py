"""`column = ANY(:array)`: the id predicate of every bulk statement, its array sent in binary."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from marketplace.extensions import db

try:
    import psycopg
    from psycopg.types.array import ListBinaryDumper
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs lack it
    psycopg = None


class _BinaryList(list):
    """A list psycopg sends in binary: each element length-prefixed, nothing quoted or parsed as text.
    For a chunk of 2,500 ids that is 1 ms a statement instead of 4 (measured with bench approvals'
    eight such statements a chunk)."""


if psycopg is not None:
    # Registered for this subclass only: every other list a statement binds is sent as before.
    psycopg.adapters.register_dumper(_BinaryList, ListBinaryDumper)


class _StringArray(sa.types.TypeDecorator):
    """ARRAY(VARCHAR) as the statement says it (`::VARCHAR[]`, so an empty array has a type), bound as
    a _BinaryList. ARRAY's own processor would copy the value into a plain list."""

    impl = postgresql.ARRAY(sa.String)
    cache_ok = True

    def bind_processor(self, dialect):
        return lambda value: None if value is None else _BinaryList(value)


def among(column: sa.ColumnElement, values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column = ANY(:array)` on PostgreSQL: one bind parameter for a chunk's thousands of ids, where
    an IN list costs more to build, bind and parse than the statement takes to run. IN elsewhere."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=_StringArray))
    return column.in_(list(values))
