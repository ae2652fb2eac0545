"""Clicks at scale: clicks partitioned by month on PostgreSQL, counted per hour by the click's own statement,
and reports that read the hourly roll-up giving the numbers the raw clicks give."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from tests.factories import auth, live_brief, sign_up_brand
from tests.factories.jobs import drain
from tests.factories.tracking import click, workers

CAPTION = {"kind": "caption", "quantity": 10, "unit_price_cents": 100, "max_per_worker": 5,
           "proof": {"text": {"min_length": 5, "max_length": 300}}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def two_groups(client, standin):
    """A live brief with two groups; two workers holding a task in each: four tracked codes."""
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[{**CAPTION, "name": "A"}, {**CAPTION, "name": "B"}])
    people = workers(client, 2)
    codes = {}
    for worker, token in people:
        for group in brief["task_groups"]:
            held = client.post(f"/v1/task-groups/{group['id']}/claim", headers=auth(token)).get_json()
            codes[(group["id"], worker["id"])] = held["tracked_code"]
    return {"brand_key": brand_key, "brief": brief, "codes": codes}


class Clock:
    """The click's time, set by the test (the tracked link reads tracking.service.utcnow)."""

    def __init__(self, monkeypatch):
        from marketplace.tracking import service

        self.now = datetime.now(UTC)
        monkeypatch.setattr(service, "utcnow", lambda: self.now)


def raw_figures(db_session, brief_id: str) -> dict:
    """Clicks per dimension counted from the raw clicks, as the reports did before the roll-up."""
    db_session.rollback()
    q = db_session.execute
    return {
        "group": dict(q(sa.text("SELECT group_id, count(*) FROM clicks WHERE brief_id = :b GROUP BY 1"),
                        {"b": brief_id}).all()),
        "worker": dict(q(sa.text("SELECT worker_id, count(*) FROM clicks WHERE brief_id = :b GROUP BY 1"),
                         {"b": brief_id}).all()),
        "day": dict(q(sa.text("SELECT to_char(timezone('UTC', clicked_at), 'YYYY-MM-DD'), count(*) FROM clicks "
                              "WHERE brief_id = :b GROUP BY 1"), {"b": brief_id}).all()),
        "brief": q(sa.text("SELECT count(*) FROM clicks WHERE brief_id = :b"), {"b": brief_id}).scalar_one(),
    }


def rollup_from_raw(db_session) -> set[tuple]:
    return {tuple(r) for r in db_session.execute(sa.text(
        "SELECT brief_id, group_id, worker_id, date_trunc('hour', clicked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
        "count(*) FROM clicks GROUP BY 1, 2, 3, 4"))}


def rollup_stored(db_session) -> set[tuple]:
    db_session.rollback()
    return {tuple(r) for r in db_session.execute(sa.text(
        "SELECT brief_id, group_id, worker_id, hour, clicks FROM clicks_hourly"))}


def report(client, setup) -> dict:
    response = client.get(f"/v1/briefs/{setup['brief']['id']}/report", headers=auth(setup["brand_key"]))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def partition_of(db_session, click_id: str) -> str:
    return db_session.execute(sa.text("SELECT tableoid::regclass::text FROM clicks WHERE id = :id"),
                              {"id": click_id}).scalar_one()


# --- the tracked link -----------------------------------------------------------------------------------------


def test_a_click_is_still_one_statement_and_counts_its_hour_in_it(app, client, two_groups, db_session,
                                                                  sql_statements, monkeypatch):
    """GET /t/{code} sends one statement, on the direct pool (nothing through the ORM's engine), and that
    statement both stores the click and counts it in clicks_hourly."""
    from marketplace.db import direct

    sent = []
    real = direct._run
    monkeypatch.setattr(direct, "_run", lambda bound, statement, params, **kw: (
        sent.append(str(statement)), real(bound, statement, params, **kw))[1])
    code = next(iter(two_groups["codes"].values()))
    with sql_statements as orm:
        click(client, code)
    assert len(sent) == 1 and orm == []
    assert "INSERT INTO clicks " in sent[0] and "INSERT INTO clicks_hourly" in sent[0]
    assert rollup_stored(db_session) == rollup_from_raw(db_session)
    assert sum(r[-1] for r in rollup_stored(db_session)) == 1


def test_report_clicks_equal_the_raw_clicks_across_an_hour_and_a_month_boundary(client, two_groups, db_session,
                                                                                 monkeypatch, app):
    """Clicks on four links at times either side of an hour and of two month boundaries (one month
    without a partition of its own, caught by the default): the report's clicks by group, worker,
    day and brief are the raw counts; clicks_hourly is what rebuilding it from the raw clicks gives;
    repeats and capped requests count in neither."""
    from marketplace.tracking.partitions import existing_partitions

    monkeypatch.setitem(app.config, "CLICK_CAP_PER_ADDRESS_PER_MINUTE", 3)
    clock = Clock(monkeypatch)
    codes = list(two_groups["codes"].values())
    moments = ["2026-11-30 22:59:59.999", "2026-11-30 23:00:00", "2026-11-30 23:59:59.5", "2026-12-01 00:00:00",
               "2026-12-01 00:00:01", "2026-12-31 23:59:59.999999", "2027-01-01 00:00:00", "2027-01-01 01:30:00"]
    for i, moment in enumerate(moments):
        clock.now = at(moment)
        for n, code in enumerate(codes[: 1 + i % len(codes)]):
            click(client, code, n=1 + n)
    clock.now = at("2026-12-01 00:00:02")
    click(client, codes[0], ip="203.0.113.7", user_agent="repeat")
    click(client, codes[0], ip="203.0.113.7", user_agent="repeat")  # the same visit: counted once
    for n in range(5):  # one address, five agents: three counted (the cap), two not
        click(client, codes[1], ip="203.0.113.8", user_agent=f"agent {n}")

    raw = raw_figures(db_session, two_groups["brief"]["id"])
    assert raw["brief"] == sum(raw["day"].values()) > 20
    assert set(raw["day"]) == {"2026-11-30", "2026-12-01", "2026-12-31", "2027-01-01"}
    assert rollup_stored(db_session) == rollup_from_raw(db_session)
    hours = {r[3] for r in rollup_stored(db_session)}
    assert {at("2026-11-30 22:00"), at("2026-11-30 23:00"), at("2026-12-01 00:00"), at("2026-12-31 23:00"),
            at("2027-01-01 00:00"), at("2027-01-01 01:00")} == hours

    body = report(client, two_groups)
    assert body["totals"]["clicks"] == raw["brief"]
    assert {g["group_id"]: g["clicks"] for g in body["groups"]} == raw["group"]
    assert {w["worker_id"]: w["clicks"] for w in body["workers"]} == raw["worker"]
    assert {d["date"]: d["clicks"] for d in body["daily"]} == raw["day"]

    # Each click sits in its month's partition, or in the default where the month has none.
    parts = existing_partitions(db_session.connection())
    for click_id, clicked_at in db_session.execute(sa.text("SELECT id, clicked_at FROM clicks")):
        month = f"clicks_p{clicked_at.astimezone(UTC):%Y%m}"
        expected = month if month in parts else "clicks_default"
        assert partition_of(db_session, click_id) == f"click_partitions.{expected}"


def test_many_threads_on_one_link_roll_up_exactly(app, two_groups, db_session):
    """A viral link: 8 threads × 25 new visitors at once, all on one link in one hour. Every click is
    counted once in its hour's row, whichever order the row locks were taken in."""
    code = next(iter(two_groups["codes"].values()))
    statuses = []

    def visit(t: int):
        with app.test_client() as c:
            for n in range(25):
                response = c.get(f"/t/{code}", headers={"User-Agent": "phone"},
                                 environ_base={"REMOTE_ADDR": f"198.51.{t}.{n + 1}"})
                statuses.append(response.status_code)

    threads = [threading.Thread(target=visit, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * 200
    stored = rollup_stored(db_session)
    assert stored == rollup_from_raw(db_session)
    assert sum(r[-1] for r in stored) == 200


# --- partitions -----------------------------------------------------------------------------------------------


def test_clicks_are_partitioned_by_month_with_a_default_and_the_months_ahead(db_session):
    from marketplace.tracking.partitions import add_months, existing_partitions, month_start

    strategy, key = db_session.execute(sa.text(
        "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
        "WHERE p.partrelid = 'clicks'::regclass")).one()
    assert (strategy, key) == ("r", "clicked_at")
    parts = existing_partitions(db_session.connection())
    this_month = month_start(datetime.now(UTC))
    assert {"clicks_default"} | {f"clicks_p{add_months(this_month, n):%Y%m}" for n in range(3)} <= parts
    # Every partition has its once-per-visit unique index.
    unique = set(db_session.execute(sa.text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE s.nspname = 'click_partitions' AND i.indisunique AND i.indnatts = 3")).scalars())
    assert parts <= unique


def test_the_scheduled_job_creates_months_ahead_once_and_again_creates_nothing(app, db_session):
    """The click-partitions job through a real RQ worker creates this month and the next two; a second
    run finds them all; for a far month it makes the three months from there."""
    from marketplace.tracking import partitions
    from workers.schedule import PERIODIC

    entry = next(p for p in PERIODIC if p.name == "click-partitions")
    assert entry.interval(app.config) == 3600
    from tests.factories.jobs import run_job

    assert run_job(app, "workers.tracking.create_click_partitions") == []  # the migration made them
    with app.app_context():
        made = partitions.ensure_partitions(today=date(2041, 11, 20))
        assert made == ["clicks_p204111", "clicks_p204112", "clicks_p204201"]
        assert partitions.ensure_partitions(today=date(2041, 11, 20)) == []
    bounds = db_session.execute(sa.text(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'clicks_p204112'")).scalar_one()
    assert bounds == "FOR VALUES FROM ('2041-12-01 00:00:00+00') TO ('2042-01-01 00:00:00+00')"


def test_two_schedulers_side_by_side_enqueue_the_partition_job_once(app):
    """A deploy overlap: two scheduler loops running at once enqueue one click-partitions job for the
    hour (the same SET NX slot every scheduled job uses)."""
    from rq import Queue

    from marketplace.jobs import queue_name, redis_connection, run_periodic_forever
    from workers.schedule import PERIODIC

    entry = [p for p in PERIODIC if p.name == "click-partitions"]
    stop = threading.Event()
    loops = [threading.Thread(target=run_periodic_forever, args=(app, entry, stop, 0.02)) for _ in range(2)]
    for loop in loops:
        loop.start()
    time.sleep(0.5)
    stop.set()
    for loop in loops:
        loop.join()
    with app.app_context():
        queued = Queue(queue_name("default", app), connection=redis_connection(app)).jobs
    assert [j.func_name for j in queued] == ["workers.tracking.create_click_partitions"]
    drain(app)


def test_clicks_stranded_in_the_default_move_into_their_new_month_keeping_conversions(
        app, client, two_groups, db_session, monkeypatch):
    """Clicks of a month with no partition land in the default; a conversion points at one of them by
    click id. Creating the month moves them into it; the conversion's key to its click still holds,
    and is still enforced."""
    from marketplace.tracking import partitions

    clock = Clock(monkeypatch)
    code = next(iter(two_groups["codes"].values()))
    clock.now = at("2019-03-10 12:00:00")
    response = client.get(f"/t/{code}", environ_base={"REMOTE_ADDR": "192.0.2.50"})
    click_id = dict(parse_qsl(urlsplit(response.headers["Location"]).query))["mkt_click"]
    click(client, code, n=3)
    assert partition_of(db_session, click_id) == "click_partitions.clicks_default"
    answer = client.post("/v1/conversions", headers=auth(two_groups["brand_key"]), json={
        "click_id": click_id, "external_id": "order-1", "value_cents": 500, "occurred_at": "2019-03-10T13:00:00Z"})
    assert answer.status_code == 201, answer.get_json()
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT click_at FROM conversions")).scalar_one() == at("2019-03-10 12:00:00")

    db_session.rollback()  # (this test's own reads would hold off the move's locks)
    with app.app_context():
        assert partitions.ensure_partitions(today=date(2019, 3, 1), months_ahead=0) == ["clicks_p201903"]
    db_session.rollback()
    assert partition_of(db_session, click_id) == "click_partitions.clicks_p201903"
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM click_partitions.clicks_default "
        "WHERE clicked_at >= '2019-03-01' AND clicked_at < '2019-04-01'")).scalar_one() == 0
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM conversions v JOIN clicks k ON k.id = v.click_id AND k.clicked_at = v.click_at"
    )).scalar_one() == 1
    # The key is back and enforced: a conversion naming a click that is not there is refused.
    with pytest.raises(sa.exc.IntegrityError):
        db_session.execute(sa.text(
            "UPDATE conversions SET click_at = click_at + interval '1 second'"))
    db_session.rollback()
    raw = raw_figures(db_session, two_groups["brief"]["id"])
    assert report(client, two_groups)["totals"]["clicks"] == raw["brief"] == 4


def test_the_stop_rule_and_the_report_agree_on_clicks_from_the_roll_up(client, two_groups, db_session):
    """figures() (the stop rule's reader) counts clicks from the same roll-up as the report."""
    from marketplace.tracking import reports

    for n, code in enumerate(two_groups["codes"].values()):
        click(client, code, n=n + 1)
    with client.application.app_context():
        by_group = reports.figures("group", [two_groups["brief"]["id"]])
    raw = raw_figures(db_session, two_groups["brief"]["id"])
    assert {k: f.clicks for k, f in by_group.items()} == raw["group"]
    assert sum(raw["group"].values()) == 10


# --- the migration --------------------------------------------------------------------------------------------


def test_migration_0035_converts_existing_clicks_and_goes_back(app, client, two_groups, db_session, monkeypatch):
    """Clicks stored before the partitioning (down to 0028: one plain table), in three months, one of them
    referenced by a conversion: upgrading moves every row into its month's partition, rolls them up
    into clicks_hourly and gives the conversion its click's time under the new key; downgrading
    turns it all back into one plain table, rows and key included."""
    from flask_migrate import downgrade, upgrade

    from marketplace.db import direct

    clock = Clock(monkeypatch)
    codes = list(two_groups["codes"].values())
    for moment, n in (("2026-09-15 10:20:00", 2), ("2026-10-31 23:59:59", 3), ("2026-11-01 00:00:00", 1)):
        clock.now = at(moment)
        for code in codes:
            click(client, code, n=n)
    clock.now = at("2026-10-31 23:59:59")
    response = client.get(f"/t/{codes[0]}", environ_base={"REMOTE_ADDR": "192.0.2.77"})
    click_id = dict(parse_qsl(urlsplit(response.headers["Location"]).query))["mkt_click"]
    answer = client.post("/v1/conversions", headers=auth(two_groups["brand_key"]), json={
        "click_id": click_id, "external_id": "order-9", "value_cents": 900, "occurred_at": "2026-11-01T08:00:00Z"})
    assert answer.status_code == 201, answer.get_json()
    before = rollup_from_raw(db_session)
    raw_before = raw_figures(db_session, two_groups["brief"]["id"])
    assert raw_before["brief"] == 4 * 6 + 1
    db_session.remove()
    with app.app_context():
        direct.dispose()
        downgrade(revision="0035-1")
        plain = db_session.execute(sa.text(
            "SELECT relkind FROM pg_class WHERE relname = 'clicks' AND relnamespace = 'public'::regnamespace"
        )).scalar_one()
        fk = db_session.execute(sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk_conversions_click_id_clicks'"
        )).scalar_one()
        assert (plain, fk) == ("r", "FOREIGN KEY (click_id) REFERENCES clicks(id)")
        assert db_session.execute(sa.text("SELECT count(*) FROM clicks")).scalar_one() == raw_before["brief"]
        db_session.remove()
        upgrade(revision="heads")

    partitioned = db_session.execute(sa.text(
        "SELECT relkind FROM pg_class WHERE relname = 'clicks' AND relnamespace = 'public'::regnamespace")).scalar_one()
    assert partitioned == "p"
    where = dict(db_session.execute(sa.text(
        "SELECT tableoid::regclass::text, count(*) FROM clicks GROUP BY 1")).all())
    assert where == {"click_partitions.clicks_p202609": 8, "click_partitions.clicks_p202610": 13,
                     "click_partitions.clicks_p202611": 4}
    assert rollup_stored(db_session) == before == rollup_from_raw(db_session)
    assert db_session.execute(sa.text("SELECT click_id, click_at FROM conversions")).one() == (
        click_id, at("2026-10-31 23:59:59"))
    assert report(client, two_groups)["totals"]["clicks"] == raw_before["brief"]
    # And the click statement works on the rebuilt table (the direct pools were disposed around the swap).
    clock.now = datetime.now(UTC)
    click(client, codes[1], n=2)
    assert rollup_stored(db_session) == rollup_from_raw(db_session)


def test_folding_closed_days_keeps_every_sum_and_leaves_today_by_the_hour(app, client, two_groups, db_session,
                                                                          monkeypatch):
    """The fold job adds each closed UTC day's hourly rows into the day's 00:00 row: the report (and
    every day's, group's and worker's clicks) is unchanged, the hours before the cut-off are one row a
    day, the hours after it untouched; run again it changes nothing; a click arriving for a folded
    hour afterwards is counted too."""
    from marketplace.tracking import rollup
    from tests.factories.jobs import run_job

    clock = Clock(monkeypatch)
    codes = list(two_groups["codes"].values())
    for moment in ("2026-11-29 00:10:00", "2026-11-29 07:00:00", "2026-11-29 23:59:59", "2026-11-30 00:00:00",
                   "2026-11-30 13:30:00", "2026-12-01 09:00:00"):
        clock.now = at(moment)
        for n, code in enumerate(codes):
            click(client, code, n=n + 1)
    raw = raw_figures(db_session, two_groups["brief"]["id"])
    before_report = report(client, two_groups)
    db_session.rollback()

    with app.app_context():
        written = rollup.fold_closed_days(before=at("2026-12-01 00:00:00"))
    assert written == 2 * len(codes)  # two closed days, one row each per (group, worker)
    stored = rollup_stored(db_session)
    hours = sorted({r[3] for r in stored})
    assert hours == [at("2026-11-29 00:00"), at("2026-11-30 00:00"), at("2026-12-01 09:00")]
    assert sum(r[-1] for r in stored) == raw["brief"] == 6 * (1 + 2 + 3 + 4)
    after_report = report(client, two_groups)
    assert {k: after_report[k] for k in ("totals", "groups", "workers", "daily")} == {
        k: before_report[k] for k in ("totals", "groups", "workers", "daily")}
    assert {d["date"]: d["clicks"] for d in after_report["daily"]} == raw["day"]
    with app.app_context():
        assert rollup.fold_closed_days(before=at("2026-12-01 00:00:00")) == 0

    clock.now = at("2026-11-30 23:59:59.9")  # a late click for a folded hour: a row of its own, counted
    click(client, codes[0])
    assert report(client, two_groups)["totals"]["clicks"] == raw["brief"] + 1
    with app.app_context():
        assert rollup.fold_closed_days(before=at("2026-12-01 00:00:00")) == 1
    assert report(client, two_groups)["totals"]["clicks"] == raw["brief"] + 1
    # The scheduled job folds what closed before today (real time): 1 December's hours, one row per link.
    assert run_job(app, "workers.tracking.fold_click_hours") == len(codes)
    assert {r[3] for r in rollup_stored(db_session)} == {at(d) for d in ("2026-11-29", "2026-11-30", "2026-12-01")}
    assert report(client, two_groups)["totals"]["clicks"] == raw["brief"] + 1


def test_the_embedded_sqlite_default_rolls_clicks_up_too(tmp_path):
    """`make run` on SQLite: no partitions, the click and its hour's count in one transaction, and the
    report's clicks equal to the raw clicks."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from marketplace import create_app\n"
        "from flask_migrate import upgrade\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/m.sqlite3'}})\n"
        "from marketplace.extensions import db\n"
        "from marketplace.tracking import partitions, rollup\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    from marketplace.demo import seed\n"
        "    lines = seed().lines\n"
        "    code, brief = db.session.execute(db.text('select tracked_code, brief_id from claims limit 1')).one()\n"
        "    print(partitions.ensure_partitions(), rollup.fold_closed_days())\n"
        "c = app.test_client()\n"
        "for n in range(7):\n"
        "    for _ in range(2):\n"
        "        assert c.get('/t/' + code, environ_base={'REMOTE_ADDR': f'192.0.2.{n + 1}'}).status_code == 302\n"
        "key = lines[0].split('API key: ')[1]\n"
        "body = c.get(f'/v1/briefs/{brief}/report', headers={'Authorization': 'Bearer ' + key}).get_json()\n"
        "with app.app_context():\n"
        "    raw = db.session.execute(db.text('select count(*) from clicks')).scalar()\n"
        "    rolled = db.session.execute(db.text('select sum(clicks) from clicks_hourly')).scalar()\n"
        "    print(raw, rolled, body['totals']['clicks'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_KEY": "x"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, last = out.stdout.strip().split("\n")[-2:]
    assert first == "[] 0"
    raw, rolled, reported = (int(x) for x in last.split())
    assert raw == rolled == reported >= 7
