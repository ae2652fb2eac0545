"""Single statements outside the request's ORM session, each its own transaction.

Most requests work through `db.session`: a pooled connection checked with a pre-ping, then BEGIN,
the statements, and COMMIT or ROLLBACK, which is four round trips before any real work. The hottest
requests need exactly one statement: authenticating a caller, reading a brief, creating one,
following a tracked link. They run on the engines here. A statement runs in autocommit, so it is
atomic by itself and costs one round trip.

There is no pre-ping either, because it would be another round trip. `read` retries once on a
connection the server had dropped (a restart, an idle timeout), on a fresh pool. Writes are not
retried unless the caller says a repeat is harmless, since a write may have committed before its
connection dropped: the client gets a 503 (see marketplace/http/problems.py) and may retry with its Idempotency-Key,
on a pool already renewed for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from flask import current_app
from psycopg import pq

from marketplace.extensions import db

# psycopg converts a statement's %(name)s placeholders to $n on every execution, caching the result
# only for statements up to 4,096 bytes (psycopg._queries, a guard against ORM-made INSERTs with
# varying row counts). The one-statement paths here are constant texts of 5 to 8 KB (the task
# listing with its credential check is 7.7 KB), so each request paid about 0.3 ms of Python to
# split the same text again. Raised to 32 KB: still an LRU of 128 entries, and every statement
# longer than that is an ORM's bulk INSERT that the parameter-count guard (50) keeps out anyway.
_QUERY_CACHE_LIMIT = 32_768
try:
    from psycopg import _queries as _psycopg_queries
except ImportError:  # pragma: no cover - a psycopg without the module: its own default applies
    _psycopg_queries = None
if _psycopg_queries is not None and getattr(_psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < _QUERY_CACHE_LIMIT:
    _psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = _QUERY_CACHE_LIMIT


def engine(*, durable: bool = True) -> sa.Engine:
    """The autocommit engine, with its own pool, bound to the app's database.

    durable=False gives sessions with synchronous_commit=off, for writes that may be lost in the
    last fraction of a second before a database crash (clicks), never corrupted. Money never goes
    through that pool; it is a separate pool precisely so the setting cannot leak into other work.
    """
    engines = current_app.extensions.setdefault("direct", {})
    key = "durable" if durable else "fast"
    made = engines.get(key)
    if made is not None and made[1] is db.engine:
        return made[0]
    if db.engine.dialect.name == "postgresql":
        # Named, so pg_stat_activity tells these sessions from the ORM's.
        options = {"application_name": f"marketplace-direct-{key}"}
        if not durable:
            options["options"] = "-c synchronous_commit=off"
        # A sync gunicorn worker holds one connection at a time, for one statement; threads (the
        # tests' races, a threaded server) borrow overflow connections for as briefly.
        built = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", connect_args=options,
                                 pool_size=2, max_overflow=20)
    else:
        # The embedded SQLite default shares the app's engine: one file, one writer.
        built = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    engines[key] = (built, db.engine)
    return built


def read(statement: sa.Executable, params: Mapping[str, Any] | None = None) -> list[Mapping[str, Any]]:
    """All rows of one read-only statement, as mappings (retried once on a dropped connection)."""
    return _run(engine(), statement, params, retry=True)


def write(statement: sa.Executable, params: Mapping[str, Any] | None = None, *, durable: bool = True,
          retry: bool = False) -> list[Mapping[str, Any]]:
    """The rows one writing statement returns (RETURNING), as mappings, committed when this returns.

    retry=True only for a write whose repeat is harmless (a click: counted once per visit anyway), since
    a statement may have committed before its connection dropped.
    """
    return _run(engine(durable=durable), statement, params, retry=retry)


def _run(bound: sa.Engine, statement: sa.Executable, params: Mapping[str, Any] | None, *,
         retry: bool) -> list[Mapping[str, Any]]:
    """On PostgreSQL the statement (a module constant) is compiled once and run on the pooled driver
    connection itself: for these one-statement requests SQLAlchemy's per-execution set-up costs
    as much as the query. psycopg hands back values ready to use (parsed JSON, aware times); the
    SQLite default goes through SQLAlchemy, where a text statement's `.columns()` types do that.
    """
    if bound.dialect.name != "postgresql":
        with bound.connect() as conn:
            result = conn.execute(statement, params or {})
            return [row._mapping for row in result] if result.returns_rows else []
    compiled = _compiled(bound, statement)
    for attempt in (1, 2):
        connection = bound.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(compiled.sql, compiled.params(params))
                return compiled.rows(cursor)
        except psycopg.OperationalError:
            driver = connection.dbapi_connection
            if driver is None or not driver.broken:
                raise  # not a lost connection but an error of the statement itself
            connection.invalidate()
            bound.dispose(close=False)  # its pool-mates are as stale after a server restart
            if not retry or attempt == 2:
                raise
        finally:
            connection.close()
    raise AssertionError("unreachable")


# statement → the driver's SQL for it and the values its expression bound itself (a literal
# `status = 'open'` is a bound parameter with its value). Weak: a statement built per call is
# compiled per call and forgotten with it; the hot ones are module constants, compiled once.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Compiled:
    """A statement as the driver runs it: its SQL, the values its expression bound itself, and
    the names of its columns, read off the first result (a statement's columns never change)."""

    __slots__ = ("sql", "defaults", "names")

    def __init__(self, sql: str, defaults: dict[str, Any]):
        self.sql, self.defaults, self.names = sql, defaults, None

    def params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return {**self.defaults, **params} if self.defaults and params else params or self.defaults

    def rows(self, cursor: psycopg.Cursor) -> list[dict[str, Any]]:
        """The statement's rows as dicts, none for one that returns none. The cursor makes tuples:
        psycopg's dict_row decodes every column's name again for each result, which on the
        claim's 45 columns cost more Python than its rows did (and `cursor.description` builds a
        Column object per column)."""
        result = cursor.pgresult
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            return []
        names = self.names
        if names is None:
            names = self.names = tuple(result.fname(i).decode() for i in range(result.nfields))
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _compiled(bound: sa.Engine, statement: sa.Executable) -> _Compiled:
    made = _COMPILED.get(statement)
    if made is None:
        compiled = statement.compile(dialect=bound.dialect)
        if compiled.post_compile_params:
            # An IN list bound as one expanding parameter (`col.in_([...])`) is rendered per
            # execution by SQLAlchemy; these statements are fixed texts: spell it col = ANY(:array).
            raise ValueError(f"an expanding IN cannot run on the direct path: {sorted(p.key for p in compiled.post_compile_params)}")
        defaults = {name: value for name, value in compiled.params.items() if value is not None}
        made = _COMPILED[statement] = _Compiled(str(compiled), defaults)
    return made


def pipelines() -> bool:
    """Whether `transaction` is available: PostgreSQL (the embedded SQLite default has no pipeline)."""
    return engine().dialect.name == "postgresql"


class Transaction:
    """One transaction on a connection of the durable autocommit pool, its statements sent in
    batches: each `run` is one round trip however many statements it carries (psycopg's pipeline
    mode), where the ORM's session spends a pre-ping, a BEGIN, one trip per statement and a COMMIT.
    Each statement still runs by itself, so in READ COMMITTED a later one sees what committed
    while an earlier one waited for a lock."""

    def __init__(self, bound: sa.Engine, driver: psycopg.Connection):
        self._bound = bound
        self._driver = driver
        self._begun = False
        self.committed = False

    def run(self, *steps: tuple[sa.Executable, Mapping[str, Any] | None]) -> list[list[Mapping[str, Any]]]:
        """Each step's rows, all sent in one round trip (with the BEGIN, the first time)."""
        return self._send(steps, commit=False)

    def commit(self, *steps: tuple[sa.Executable, Mapping[str, Any] | None]) -> list[list[Mapping[str, Any]]]:
        """The last steps and the COMMIT, in one round trip; their rows."""
        rows = self._send(steps, commit=True)
        self.committed = True
        return rows

    def _send(self, steps: Sequence[tuple[sa.Executable, Mapping[str, Any] | None]], *,
              commit: bool) -> list[list[Mapping[str, Any]]]:
        driver = self._driver
        cursors = []
        with driver.pipeline():
            if not self._begun:
                driver.execute("BEGIN")
                self._begun = True
            for statement, params in steps:
                compiled = _compiled(self._bound, statement)
                cursor = driver.cursor()
                cursor.execute(compiled.sql, compiled.params(params))
                cursors.append((compiled, cursor))
            if commit:
                driver.execute("COMMIT")
        return [compiled.rows(cursor) for compiled, cursor in cursors]


@contextmanager
def transaction() -> Iterator[Transaction]:
    """A `Transaction` (PostgreSQL only: see `pipelines`), rolled back unless committed: a refusal
    raised inside it leaves nothing behind. A connection lost midway is dropped with its pool-mates
    and the error goes up (a 503: the client retries with its Idempotency-Key); nothing is retried
    here, since the COMMIT may have reached the server."""
    bound = engine()
    connection = bound.raw_connection()
    driver = connection.dbapi_connection
    tx = Transaction(bound, driver)
    try:
        yield tx
        if not tx.committed and tx._begun:
            driver.execute("ROLLBACK")
    except BaseException:
        if driver.broken:
            connection.invalidate()
            bound.dispose(close=False)
        elif tx._begun and not tx.committed:
            try:
                driver.execute("ROLLBACK")
            except psycopg.Error:
                connection.invalidate()
        raise
    finally:
        connection.close()


def dispose() -> None:
    """Close every pooled connection (tests and benchmarks dropping their database)."""
    for built, _ in current_app.extensions.get("direct", {}).values():
        if built.dialect.name == "postgresql":  # SQLite's is the app's own engine
            built.dispose()
