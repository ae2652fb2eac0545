"""Monthly partitions of the clicks table on PostgreSQL, created ahead of the clicks that fill them.

Migration 0035 made `clicks` a table partitioned by RANGE (clicked_at), one partition a UTC
month, plus a default partition that catches any click outside them (so a click is never refused
for want of a partition). The partitions live in their own schema, click_partitions: nothing
reads them by name, and the application's schema lists only the tables the models declare.

`ensure_partitions` (the scheduler's "click-partitions" job, hourly) creates this month's and the
next MONTHS_AHEAD months' partitions that are missing, each with its once-per-visit unique index
(a unique index on a partitioned parent must include the partition key, so it is made per
partition; INSERT … ON CONFLICT DO NOTHING on the parent honours the chosen partition's).
Normally a month is created two months before its first click and the default stays empty. Should
the default hold clicks of a month being created (the scheduler was off for months), they are
moved into the new partition in the same transaction.

The embedded SQLite default has one plain table: nothing to do there.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.db.clock import utcnow
from marketplace.extensions import db

log = logging.getLogger(__name__)

SCHEMA = "click_partitions"
DEFAULT_PARTITION = "clicks_default"
MONTHS_AHEAD = 2
# Serialises creators (two schedulers in a deploy overlap, a job and a migration): one key, any value.
_LOCK_KEY = 35_0035
# The foreign key from conversions to clicks (click_id, click_at): moving clicks out of the default
# partition deletes them there, which the key would refuse, so a move drops and re-adds it.
_CONVERSIONS_FK = "fk_conversions_click_id_clicks"


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"clicks_p{month:%Y%m}"


def _bound(month: date) -> str:
    """A month's first instant in UTC as an SQL literal (DDL takes no parameters; a date has no quotes)."""
    return f"'{month:%Y-%m-%d} 00:00:00+00'"


def create_partition_sql(month: date) -> list[str]:
    """The statements that add one month's partition to an empty range (nothing of it in the default)."""
    name = partition_name(month)
    return [
        f"CREATE TABLE {SCHEMA}.{name} PARTITION OF clicks "
        f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(add_months(month, 1))})",
        unique_index_sql(name),
    ]


def unique_index_sql(name: str) -> str:
    return (f"CREATE UNIQUE INDEX IF NOT EXISTS uq_{name}_one_per_visit "
            f"ON {SCHEMA}.{name} (claim_id, visitor_hash, visit_window)")


def existing_partitions(conn) -> set[str]:
    return set(conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.clicks'::regclass")).scalars())


def ensure_partitions(today: date | datetime | None = None, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the missing partitions of today's month and the next `months_ahead`; their names.
    Safe to run at any time and from several places at once (an advisory lock orders them)."""
    if db.engine.dialect.name != "postgresql":
        return []
    first = month_start(today or utcnow())
    created: list[str] = []
    with db.engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        existing = existing_partitions(conn)
        for month in (add_months(first, n) for n in range(months_ahead + 1)):
            name = partition_name(month)
            if name in existing:
                continue
            low, high = _bound(month), _bound(add_months(month, 1))
            stranded = conn.execute(sa.text(
                f"SELECT count(*) FROM {SCHEMA}.{DEFAULT_PARTITION} "
                f"WHERE clicked_at >= {low} AND clicked_at < {high}")).scalar_one()
            if not stranded:
                for statement in create_partition_sql(month):
                    conn.execute(sa.text(statement))
            else:
                _move_out_of_default(conn, name, low, high)
                log.warning("moved %d clicks from %s into the new partition %s", stranded, DEFAULT_PARTITION, name)
            created.append(name)
    if created:
        log.info("created click partitions %s", ", ".join(created))
    return created


def _move_out_of_default(conn, name: str, low: str, high: str) -> None:
    """A month whose clicks already landed in the default: a new table filled with them, removed from
    the default, then attached; the conversions' key to clicks is dropped for the move and re-added
    (validated over every conversion) before the transaction commits."""
    where = f"clicked_at >= {low} AND clicked_at < {high}"
    conn.execute(sa.text(f"ALTER TABLE conversions DROP CONSTRAINT {_CONVERSIONS_FK}"))
    conn.execute(sa.text(f"CREATE TABLE {SCHEMA}.{name} (LIKE clicks INCLUDING DEFAULTS)"))
    conn.execute(sa.text(unique_index_sql(name)))
    conn.execute(sa.text(f"INSERT INTO {SCHEMA}.{name} SELECT * FROM {SCHEMA}.{DEFAULT_PARTITION} WHERE {where}"))
    conn.execute(sa.text(f"DELETE FROM {SCHEMA}.{DEFAULT_PARTITION} WHERE {where}"))
    conn.execute(sa.text(f"ALTER TABLE clicks ATTACH PARTITION {SCHEMA}.{name} FOR VALUES FROM ({low}) TO ({high})"))
    conn.execute(sa.text(f"ALTER TABLE conversions ADD CONSTRAINT {_CONVERSIONS_FK} "
                         "FOREIGN KEY (click_id, click_at) REFERENCES clicks (id, clicked_at)"))


def declared_schema_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object (autogenerate and tests/test_operations): PostgreSQL clones a foreign
    key that points at a partitioned table onto each of its partitions (conversions → every
    click_partitions.clicks_*); those clones are PostgreSQL's bookkeeping, not schema the models
    declare, so comparing the models with the database leaves them out."""
    if type_ == "foreign_key_constraint" and reflected and compare_to is None:
        return obj.referred_table.schema != SCHEMA
    return True
