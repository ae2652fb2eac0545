"""Opaque, type-prefixed identifiers (brief_…, task_…): never guessable, and never sequential
except that the log rows' ids are ordered by time (below).

The rows of the append-only logs (events, audit rows, notifications, ledger entries, webhook
deliveries) are written by the thousand in one statement and read newest first. Their ids begin
with the time they were made, UUIDv7's layout in the same 32 hex digits as every other id: 12 hex
digits of Unix milliseconds, then random bits (80 when made in Python, 74 when made in SQL, where
a UUID's version and variant take six). So each new row goes to the right-hand edge of its primary
key's index instead of to a random page of it. Still not guessable; their time is no secret (every
one of them is listed with its created_at).
"""

from __future__ import annotations

import secrets
import time
import uuid

import sqlalchemy as sa

PREFIXES = {
    "brand", "wrk", "adm", "key", "tok", "brief", "grp", "task", "clm", "sub", "pb", "pbi",
    "led", "ent", "evt", "idem", "file", "clk", "conv", "pay", "rfd", "case", "aud", "ntf",
    "susp",
    "apl",
    "bon",
    "whe", "whd",
}


# The logs' prefixes: ids ordered by the time they were made (see above).
TIME_ORDERED = {"evt", "aud", "ntf", "ent", "whd"}


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    if prefix in TIME_ORDERED:
        return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"
    return f"{prefix}_{uuid.uuid4().hex}"


def sql_new_id(prefix: str, dialect_name: str) -> sa.ColumnElement[str]:
    """The same id shape made inside the database, for set-based inserts."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    if dialect_name == "postgresql":
        random = sa.func.replace(sa.cast(sa.func.gen_random_uuid(), sa.Text), "-", "")
        if prefix not in TIME_ORDERED:
            return sa.literal(f"{prefix}_") + random
        millis = sa.cast(sa.func.floor(sa.extract("epoch", sa.func.clock_timestamp()) * 1000), sa.BigInteger)
        return sa.literal(f"{prefix}_") + sa.func.lpad(sa.func.to_hex(millis), 12, "0") + sa.func.substr(random, 1, 20)
    if prefix not in TIME_ORDERED:
        return sa.literal(f"{prefix}_") + sa.func.lower(sa.func.hex(sa.func.randomblob(16)))
    millis = sa.cast((sa.func.julianday("now") - 2440587.5) * 86400000, sa.Integer)
    return (sa.literal(f"{prefix}_") + sa.func.printf("%012x", millis)
            + sa.func.lower(sa.func.hex(sa.func.randomblob(10))))


def id_column(prefix: str) -> sa.Column:
    return sa.Column(sa.String(40), primary_key=True, default=lambda: new_id(prefix))
