"""The hourly click roll-up (clicks_hourly) folded day by day once a UTC day is over.

The click's own statement counts it in its hour's row (tracking.service). A report sums rows, so
what it costs is the number of rows: a brief with 200 workers in 3 groups clicked every hour for
30 days has 600 × 720 = 432,000 hourly rows, however few clicks they count. Nothing reads a
closed day hour by hour (reports go down to UTC days), so `fold_closed_days` (the scheduler's
"fold-click-hours" job, hourly) adds up each (brief, group, worker) day's hourly rows into the
row of the day's first hour (00:00 UTC) and deletes the others: 600 × 30 + today's hours, about
32,000 rows in that example.

One statement does it (a DELETE … RETURNING feeding an INSERT … ON CONFLICT DO UPDATE), so a
reader sees the day's hours or the day's sum, never both or neither: every sum is unchanged at
every instant. The 00:00 row itself is never deleted, only added to. A click whose statement
reaches a folded hour after the fold (it began before midnight, committed after) writes a fresh
row for that hour, which counts like any other and is folded on the next run.

The embedded SQLite default keeps every hour: its data is a demo's.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.db.clock import utcnow
from marketplace.extensions import db

_DAY = "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"

_FOLD = sa.text(f"""
WITH folded AS (
    DELETE FROM clicks_hourly
    WHERE hour < :before AND hour <> {_DAY}
    RETURNING brief_id, group_id, worker_id, {_DAY} AS day, clicks
)
INSERT INTO clicks_hourly (brief_id, group_id, worker_id, hour, clicks)
SELECT brief_id, group_id, worker_id, day, sum(clicks) FROM folded GROUP BY brief_id, group_id, worker_id, day
ON CONFLICT (brief_id, group_id, worker_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + EXCLUDED.clicks
""")


def fold_closed_days(before: datetime | None = None) -> int:
    """Fold the hourly rows of the UTC days that ended before `before` (default: today's midnight)
    into their days' first hours; how many day rows were written."""
    if db.engine.dialect.name != "postgresql":
        return 0
    if before is None:
        before = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    with db.engine.begin() as conn:
        return conn.execute(_FOLD, {"before": before}).rowcount
