"""Which database errors mean "not now" (a retry may succeed) rather than "wrong" (a bug of ours)."""

from __future__ import annotations

import psycopg

# SQLSTATE classes that say "not now" rather than "wrong": connection exceptions, transaction
# rollbacks (deadlock, serialization), insufficient resources, operator intervention (cancelled,
# shutting down).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def database_unavailable(error: Exception) -> bool:
    """A lost or refused connection, a deadlock, a statement timeout, a locked SQLite file: nothing
    the client did wrong, and a retry may well succeed. Anything else an OperationalError can be
    (a missing table, bad SQL on SQLite) is a bug of ours and stays a logged 500."""
    if getattr(error, "connection_invalidated", False):
        return True
    driver_error = getattr(error, "orig", error)
    if isinstance(driver_error, psycopg.OperationalError):
        state = driver_error.sqlstate
        return state is None or state[:2] in _TRANSIENT_SQLSTATE_CLASSES  # None: failed client-side
    return "database is locked" in str(driver_error)
