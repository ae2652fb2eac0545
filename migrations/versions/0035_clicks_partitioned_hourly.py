"""clicks: partitioned by month on PostgreSQL, counted per hour in clicks_hourly for reports

On PostgreSQL the clicks table becomes declaratively partitioned by RANGE (clicked_at), one
partition a UTC month in the click_partitions schema, plus a default partition for anything outside
them. The conversion: create the partitioned table under a working name, create the partitions the
existing rows need (their months, this month and the next two), move the rows, drop the old table,
take its name. The primary key becomes (id, clicked_at) (a partitioned table's keys must include
the partition key) and the once-per-visit unique index is made per partition (same reason).

The foreign key conversions.click_id → clicks.id can not stay as it was (clicks.id alone is no
longer unique as far as PostgreSQL knows), so conversions gain click_at, the click's time, and the
key becomes (click_id, click_at) → clicks (id, clicked_at): still enforced, pruned to one partition.

clicks_hourly counts clicks per (brief, group, worker, UTC hour): reports read it, the click's own
statement keeps it. It is filled here from the existing clicks.

The report index on clicks (brief, group, worker, clicked_at) is dropped: nothing reads clicks by
brief any more, and it was one more index to write per click.

On SQLite (the embedded default) clicks stay one plain table; it gains clicks_hourly and
conversions.click_at the same.

Revision ID: 0035
Revises: 0031
Create Date: 2026-12-04 19:50:00
"""
from datetime import date, datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0035'
down_revision = '0031'
branch_labels = None
depends_on = None

SCHEMA = 'click_partitions'
MONTHS_AHEAD = 2
HOUR_UTC = "date_trunc('hour', clicked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
COLUMNS = ('id, claim_id, task_id, group_id, brief_id, worker_id, clicked_at, ip_hash, user_agent_hash, '
           'visitor_hash, visit_window')


def _add_months(month, n):
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _bound(month):
    return f"'{month:%Y-%m-%d} 00:00:00+00'"


def _create_hourly():
    op.create_table(
        'clicks_hourly',
        sa.Column('brief_id', sa.String(length=40), nullable=False),
        sa.Column('group_id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('clicks', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('clicks >= 0', name=op.f('ck_clicks_hourly_clicks_not_negative')),
        sa.ForeignKeyConstraint(['brief_id'], ['briefs.id'], name=op.f('fk_clicks_hourly_brief_id_briefs')),
        sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'], name=op.f('fk_clicks_hourly_group_id_task_groups')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_clicks_hourly_worker_id_workers')),
        sa.PrimaryKeyConstraint('brief_id', 'group_id', 'worker_id', 'hour', name=op.f('pk_clicks_hourly')),
    )


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        _create_hourly()
        op.execute("INSERT INTO clicks_hourly (brief_id, group_id, worker_id, hour, clicks) "
                   "SELECT brief_id, group_id, worker_id, strftime('%Y-%m-%d %H:00:00.000000', clicked_at), count(*) "
                   "FROM clicks GROUP BY 1, 2, 3, 4")
        with op.batch_alter_table('clicks') as batch:
            batch.drop_index('ix_clicks_brief_group_worker_at')
        with op.batch_alter_table('conversions') as batch:
            batch.add_column(sa.Column('click_at', sa.DateTime(timezone=True), nullable=True))
        op.execute("UPDATE conversions SET click_at = (SELECT k.clicked_at FROM clicks k WHERE k.id = conversions.click_id) "
                   "WHERE click_id IS NOT NULL")
        return

    # Writers of clicks wait for the conversion (it is one transaction), never see half of it.
    op.execute("LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE conversions DROP CONSTRAINT fk_conversions_click_id_clicks")
    op.execute("""
        CREATE TABLE clicks_partitioned (
            id varchar(40) NOT NULL,
            claim_id varchar(40) NOT NULL,
            task_id varchar(40) NOT NULL,
            group_id varchar(40) NOT NULL,
            brief_id varchar(40) NOT NULL,
            worker_id varchar(40) NOT NULL,
            clicked_at timestamptz NOT NULL,
            ip_hash varchar(64),
            user_agent_hash varchar(64),
            visitor_hash varchar(64),
            visit_window bigint
        ) PARTITION BY RANGE (clicked_at)""")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(f"CREATE TABLE {SCHEMA}.clicks_default PARTITION OF clicks_partitioned DEFAULT")
    now = datetime.now(timezone.utc)
    this_month = date(now.year, now.month, 1)
    months = {_add_months(this_month, n) for n in range(MONTHS_AHEAD + 1)}
    for (start,) in bind.execute(sa.text(
            "SELECT DISTINCT date_trunc('month', clicked_at AT TIME ZONE 'UTC')::date FROM clicks")):
        months.add(start)
    names = ['clicks_default']
    for month in sorted(months):
        name = f'clicks_p{month:%Y%m}'
        names.append(name)
        op.execute(f"CREATE TABLE {SCHEMA}.{name} PARTITION OF clicks_partitioned "
                   f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_add_months(month, 1))})")
    op.execute(f"INSERT INTO clicks_partitioned ({COLUMNS}) SELECT {COLUMNS} FROM clicks")
    op.execute("DROP TABLE clicks")
    op.execute("ALTER TABLE clicks_partitioned RENAME TO clicks")
    # Keys and indexes after the rows are in (faster than maintaining them row by row), named as before.
    op.execute("ALTER TABLE clicks ADD CONSTRAINT pk_clicks PRIMARY KEY (id, clicked_at)")
    for column, table in (('brief_id', 'briefs'), ('claim_id', 'claims'), ('group_id', 'task_groups'),
                          ('task_id', 'tasks'), ('worker_id', 'workers')):
        op.execute(f"ALTER TABLE clicks ADD CONSTRAINT fk_clicks_{column}_{table} "
                   f"FOREIGN KEY ({column}) REFERENCES {table} (id)")
    op.execute("CREATE INDEX ix_clicks_claim_id ON clicks (claim_id)")
    op.execute("CREATE INDEX ix_clicks_ip_at ON clicks (ip_hash, clicked_at)")
    for name in names:
        op.execute(f"CREATE UNIQUE INDEX uq_{name}_one_per_visit ON {SCHEMA}.{name} "
                   "(claim_id, visitor_hash, visit_window)")

    op.add_column('conversions', sa.Column('click_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE conversions v SET click_at = k.clicked_at FROM clicks k WHERE k.id = v.click_id")
    op.execute("ALTER TABLE conversions ADD CONSTRAINT fk_conversions_click_id_clicks "
               "FOREIGN KEY (click_id, click_at) REFERENCES clicks (id, clicked_at)")

    _create_hourly()
    op.execute(f"INSERT INTO clicks_hourly (brief_id, group_id, worker_id, hour, clicks) "
               f"SELECT brief_id, group_id, worker_id, {HOUR_UTC}, count(*) FROM clicks GROUP BY 1, 2, 3, 4")


def downgrade():
    bind = op.get_bind()
    op.drop_table('clicks_hourly')
    if bind.dialect.name != 'postgresql':
        with op.batch_alter_table('conversions') as batch:
            batch.drop_column('click_at')
        with op.batch_alter_table('clicks') as batch:
            batch.create_index('ix_clicks_brief_group_worker_at', ['brief_id', 'group_id', 'worker_id', 'clicked_at'])
        return
    op.execute("LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE conversions DROP CONSTRAINT fk_conversions_click_id_clicks")
    op.drop_column('conversions', 'click_at')
    op.execute("ALTER TABLE clicks RENAME TO clicks_partitioned")
    op.execute("ALTER TABLE clicks_partitioned RENAME CONSTRAINT pk_clicks TO pk_clicks_partitioned")
    op.execute("ALTER INDEX ix_clicks_claim_id RENAME TO ix_clicks_partitioned_claim_id")
    op.execute("ALTER INDEX ix_clicks_ip_at RENAME TO ix_clicks_partitioned_ip_at")
    op.execute("CREATE TABLE clicks (LIKE clicks_partitioned INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO clicks ({COLUMNS}) SELECT {COLUMNS} FROM clicks_partitioned")
    op.execute("DROP TABLE clicks_partitioned")
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    op.execute("ALTER TABLE clicks ADD CONSTRAINT pk_clicks PRIMARY KEY (id)")
    for column, table in (('brief_id', 'briefs'), ('claim_id', 'claims'), ('group_id', 'task_groups'),
                          ('task_id', 'tasks'), ('worker_id', 'workers')):
        op.execute(f"ALTER TABLE clicks ADD CONSTRAINT fk_clicks_{column}_{table} "
                   f"FOREIGN KEY ({column}) REFERENCES {table} (id)")
    op.execute("CREATE INDEX ix_clicks_brief_group_worker_at ON clicks (brief_id, group_id, worker_id, clicked_at)")
    op.execute("CREATE INDEX ix_clicks_claim_id ON clicks (claim_id)")
    op.execute("CREATE UNIQUE INDEX uq_clicks_one_per_visit ON clicks (claim_id, visitor_hash, visit_window)")
    op.execute("CREATE INDEX ix_clicks_ip_at ON clicks (ip_hash, clicked_at)")
    op.execute("CREATE STATISTICS st_clicks_utc_day ON ((timezone('UTC', clicked_at))::date) FROM clicks")
    op.execute("ALTER TABLE conversions ADD CONSTRAINT fk_conversions_click_id_clicks "
               "FOREIGN KEY (click_id) REFERENCES clicks (id)")
