"""The schema comes from migrations; the embedded SQLite default works; the demo and admin commands."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from marketplace import REPO_ROOT


def test_migrations_match_the_models(app):
    """Every model change has its migration: autogenerate finds nothing left to do."""
    from marketplace.extensions import db
    from marketplace.tracking.partitions import declared_schema_object

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": declared_schema_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_demo_fills_an_empty_database_once(runner, client, db_session):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    brand_key = next(line.split("API key: ")[1] for line in result.output.splitlines() if line.startswith("# Brand"))
    briefs = client.get("/v1/briefs", headers={"Authorization": f"Bearer {brand_key}"}).get_json()["data"]
    assert [b["status"] for b in briefs] == ["live"]
    assert briefs[0]["money"]["funded_cents"] == briefs[0]["money"]["committed_cents"] > 0
    assert db_session.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one() == 400
    states = dict(db_session.execute(sa.text("SELECT status, count(*) FROM submissions GROUP BY status")).all())
    assert states == {"needs_review": 1, "approved": 1, "rejected": 1, "revision_requested": 1, "auto_rejected": 1,
                      "validating": 1}
    assert briefs[0]["money"]["spent_cents"] == 66  # the approved caption: 60 + 6 fee
    again = runner.invoke(args=["demo"])
    assert again.exit_code != 0


def test_the_embedded_default_runs_on_sqlite_with_nothing_else(tmp_path):
    """No DATABASE_URL, no REDIS_URL: migrations build an SQLite file and the demo runs on it."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_KEY": "x"}
    script = (
        "from marketplace import create_app\n"
        "from flask_migrate import upgrade\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/m.sqlite3'}})\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    from marketplace.demo import seed\n"
        "    lines = seed().lines\n"
        "    from marketplace.extensions import db\n"
        "    print(db.session.execute(db.text('select count(*) from tasks')).scalar())\n"
        "    print(app.config['REDIS_URL'])\n"
        # The demo's decisions ran through marketplace.db.together one statement after another
        # (SQLite has no DML in WITH): each approval moved its task and wrote its event, audit row
        # and notice, as one statement does on PostgreSQL.
        "    print('decided', *db.session.execute(db.text(\"select (select count(*) from events where type = "
        "'submission.approved'), (select count(*) from audit_events where action = 'submission.approved'), "
        "(select count(*) from notifications where kind = 'approved'), (select count(*) from tasks where "
        "status = 'approved')\")).one())\n"
        "c = app.test_client()\n"
        "key = lines[0].split('API key: ')[1]\n"
        "print(c.get('/v1/briefs', headers={'Authorization': 'Bearer ' + key}).get_json()['data'][0]['status'])\n"
        "print(c.get('/readyz').status_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = out.stdout.splitlines()
    assert " ".join(line for line in printed if not line.startswith("decided ")).split()[-4:] == [
        "400", "None", "live", "200"]
    [decided] = [line.split()[1:] for line in printed if line.startswith("decided ")]
    assert decided == ["1", "1", "1", "1"]


def test_create_admin_prints_the_key_alone_on_the_last_line(runner):
    result = runner.invoke(args=["create-admin", "root@example.com"])
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("mk_") and " " not in last


def test_the_run_command_serves_offline_and_funds_through_the_stand_in(tmp_path):
    """What `make run` starts: SQLite, in-process jobs, the Stripe stand-in, signed webhooks."""
    import json
    import os
    import socket
    import time
    import urllib.request

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port, stripe_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "STRIPE_"))}
    env["MARKETPLACE_INSTANCE_PATH"] = str(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--port", str(port), "--stripe-port", str(stripe_port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def call(method, url, body=None, key=None):
        request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call("GET", base + "/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        key = call("POST", base + "/v1/brands", {"name": "N", "email": "n@example.com"})["api_key"]
        brief = call("POST", base + "/v1/briefs", {
            "title": "t", "objective": "conversions", "landing_url": "https://shop.example.com",
            "budget_cents": 2000, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
            "task_groups": [{"kind": "caption", "quantity": 10, "unit_price_cents": 100}]}, key)
        intent = call("POST", f"{base}/v1/briefs/{brief['id']}/fund", key=key)
        call("POST", f"http://127.0.0.1:{stripe_port}/_standin/payment_intents/{intent['payment_intent_id']}/succeed")
        deadline = time.monotonic() + 10
        while call("GET", f"{base}/v1/briefs/{brief['id']}", key=key)["status"] != "funded":
            assert time.monotonic() < deadline, "the stand-in's webhook never funded the brief"
            time.sleep(0.1)
        assert (tmp_path / "marketplace.sqlite3").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _drop_direct_connections(db_session) -> int:
    """What a database restart does to the one-statement pools: their server sessions are gone."""
    dropped = db_session.execute(sa.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'marketplace-direct-%'")).scalar_one()
    db_session.commit()
    return dropped


def test_one_statement_reads_survive_a_dropped_connection_and_writes_answer_503(client, db_session):
    from tests.factories import auth, brief_payload, create_brief, sign_up_brand

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    assert _drop_direct_connections(db_session) >= 1

    # A read is retried once on a fresh pool: the caller never notices.
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json() == brief

    # A write is not (it may have committed before the connection dropped): 503, nothing written.
    # Creating a brief is one statement, authentication included: the first thing on the stale pool.
    assert _drop_direct_connections(db_session) >= 1
    lost = client.post("/v1/briefs", json=brief_payload(title="Lost"), headers=auth(key))
    assert lost.status_code == 503 and lost.headers["Retry-After"] == "1"
    assert lost.content_type == "application/problem+json"
    assert db_session.execute(sa.text("SELECT count(*) FROM briefs WHERE title = 'Lost'")).scalar_one() == 0
    again = client.post("/v1/briefs", json=brief_payload(title="Lost"), headers=auth(key))
    assert again.status_code == 201


def test_only_transient_database_errors_are_503():
    """Lost connections, deadlocks, cancelled statements and a locked SQLite file say "retry";
    a missing table or bad SQL is our bug and must stay a logged 500, not hide behind a 503."""
    import sqlite3

    import psycopg

    from marketplace.db.failures import database_unavailable

    def wrapped(driver_error):
        return sa.exc.OperationalError("SELECT 1", {}, driver_error)

    assert database_unavailable(wrapped(psycopg.errors.DeadlockDetected()))
    assert database_unavailable(wrapped(psycopg.errors.QueryCanceled()))
    assert database_unavailable(psycopg.OperationalError("connection is lost"))  # raised client-side
    assert database_unavailable(wrapped(sqlite3.OperationalError("database is locked")))
    assert not database_unavailable(wrapped(sqlite3.OperationalError("no such table: briefs")))
    assert database_unavailable(wrapped(psycopg.errors.TooManyConnections()))  # class 53


_ROUND_TRIP = (
    "import os, sys\n"
    "os.environ['DATABASE_URL'] = sys.argv[1]\n"
    "from flask_migrate import downgrade, upgrade\n"
    "from marketplace import create_app\n"
    "from marketplace.extensions import db\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    upgrade()\n"
    "    downgrade(revision='base')\n"
    "    left = sorted(set(db.inspect(db.engine).get_table_names()) - {'alembic_version'})\n"
    "    upgrade()\n"
    "    print(left, db.session.execute(db.text('select count(*) from bonuses')).scalar())\n"
)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_every_migration_goes_down_and_back_up(tmp_path, engine):
    """Each downgrade undoes its upgrade on both engines (SQLite alters tables in batch mode),
    so a bad release can be rolled back and upgraded again."""
    from tests.conftest import PG_ADMIN_URL, _with_database

    if engine == "sqlite":
        url = f"sqlite:///{tmp_path}/round-trip.sqlite3"
    else:
        name = f"mk_migrations_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = _with_database(PG_ADMIN_URL, name)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_KEY": "x"}
    try:
        out = subprocess.run([sys.executable, "-c", _ROUND_TRIP, url], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    finally:
        if engine == "postgresql":
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["[]", "0"]
