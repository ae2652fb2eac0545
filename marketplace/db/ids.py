"""Opaque, type-prefixed identifiers (brief_…, task_…): never sequential, never guessable."""

from __future__ import annotations

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


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{uuid.uuid4().hex}"


def sql_new_id(prefix: str, dialect_name: str) -> sa.ColumnElement[str]:
    """The same id shape made inside the database, for set-based inserts."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    if dialect_name == "postgresql":
        return sa.literal(f"{prefix}_") + sa.func.replace(
            sa.cast(sa.func.gen_random_uuid(), sa.Text), "-", ""
        )
    return sa.literal(f"{prefix}_") + sa.func.lower(sa.func.hex(sa.func.randomblob(16)))


def id_column(prefix: str) -> sa.Column:
    return sa.Column(sa.String(40), primary_key=True, default=lambda: new_id(prefix))
