"""Fixtures: a fresh PostgreSQL database (schema from the migrations) and a Redis database per run,
tables truncated between tests, the Flask test client, a live HTTP server of the app, and the
Stripe stand-in wired to it."""

from __future__ import annotations

import os
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
WEBHOOK_SECRET = "whsec_test_marketplace"  # tests sign with it too (imported as tests.conftest)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _claim_redis_db() -> tuple[int, object]:
    """Redis database indexes 1-15 are handed out to concurrent test runs through SET NX in db 0."""
    import redis

    admin = redis.Redis.from_url(REDIS_BASE_URL + "/0")
    for index in range(1, 16):
        if admin.set(f"marketplace:test-db:{index}", os.getpid(), nx=True, ex=3 * 3600):
            return index, admin
    raise RuntimeError("every Redis test database index is taken")


@pytest.fixture(scope="session")
def test_environment():
    """Create the run's database and Redis index and export them, so that RQ workers and
    subprocesses started by tests build the app against the same services."""
    name = f"mk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    redis_index, redis_admin = _claim_redis_db()
    database_url = _with_database(PG_ADMIN_URL, name)
    redis_url = f"{REDIS_BASE_URL}/{redis_index}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LINK_CHECK_ALLOW_PRIVATE": "1",
        "LOG_LEVEL": "WARNING",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    redis.Redis.from_url(redis_url).flushdb()
    redis_admin.delete(f"marketplace:test-db:{redis_index}")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()


@pytest.fixture(scope="session")
def stripe_standin(test_environment):
    from stripe_standin import StripeStandIn

    standin = StripeStandIn("127.0.0.1", 0, webhook_url=None, webhook_secret=WEBHOOK_SECRET).start()
    os.environ["STRIPE_API_KEY"] = "sk_test_marketplace"
    os.environ["STRIPE_API_BASE"] = standin.url
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def app(test_environment, stripe_standin):
    from flask_migrate import upgrade

    from marketplace import create_app

    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 5, "max_overflow": 70, "pool_pre_ping": True},
    })
    with app.app_context():
        upgrade(revision="heads")  # the schema comes from the migrations, as in production
    yield app
    with app.app_context():
        from marketplace.db import direct
        from marketplace.extensions import db

        direct.dispose()
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(app, stripe_standin):
    """The app on a real port, so the stand-in can deliver signed webhooks to it."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    stripe_standin.set_webhook(url + "/v1/webhooks/stripe", WEBHOOK_SECRET)
    yield url
    server.shutdown()


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Every test starts with empty tables, an empty Redis database and a reset stand-in."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from marketplace.extensions import db

    with app.app_context():
        db.session.remove()
        problems = ledger_problems(db.engine)
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        from marketplace.jobs import redis_connection

        redis_connection(app).flushdb()
    request.getfixturevalue("stripe_standin").reset()
    assert not problems, "ledger invariants broken after this test:\n" + "\n".join(problems)


def ledger_problems(engine) -> list[str]:
    """Money conservation, checked after every test that used the app.

    Every entry balances; all lines together sum to zero; no account (escrow, worker
    balances, fees, cash at Stripe) has a negative balance; and the ledger agrees with the
    records it books: every succeeded payment is funded once, every refund booked by status.
    """
    checks = {
        "unbalanced entries": "SELECT entry_id, SUM(amount_cents) FROM ledger_lines GROUP BY entry_id "
                              "HAVING SUM(amount_cents) <> 0",
        "lines do not sum to zero": "SELECT SUM(amount_cents) FROM ledger_lines HAVING SUM(amount_cents) <> 0",
        "lines of no entry or no account": "SELECT l.id FROM ledger_lines l "
                                           "LEFT JOIN ledger_entries e ON e.id = l.entry_id "
                                           "LEFT JOIN ledger_accounts a ON a.id = l.account_id "
                                           "WHERE e.id IS NULL OR a.id IS NULL",
        "negative balances": "SELECT a.code, SUM(l.amount_cents) * CASE a.normal WHEN 'credit' THEN -1 ELSE 1 END AS bal "
                             "FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id "
                             "GROUP BY a.code, a.normal "
                             "HAVING SUM(l.amount_cents) * CASE a.normal WHEN 'credit' THEN -1 ELSE 1 END < 0",
        "succeeded payments without a funding entry (or the reverse)": """
            SELECT p.id, e.id FROM payments p
            FULL JOIN (SELECT * FROM ledger_entries WHERE kind = 'funding') e ON e.ref_id = p.id
            WHERE (p.status = 'succeeded') IS DISTINCT FROM (e.id IS NOT NULL)""",
        "refunds whose entries do not match their status": """
            SELECT r.id, r.status, array_agg(e.kind ORDER BY e.kind) FROM refunds r
            LEFT JOIN ledger_entries e ON e.ref_id = r.id
            GROUP BY r.id, r.status
            HAVING array_agg(e.kind ORDER BY e.kind) <> CASE r.status
                WHEN 'pending' THEN ARRAY['refund']::varchar[]
                WHEN 'succeeded' THEN ARRAY['refund', 'refund_paid']::varchar[]
                -- failed: refused when asked, or failed later (made, then given back)
                ELSE CASE WHEN r.stripe_refund_id IS NULL THEN ARRAY['refund', 'refund_failed']::varchar[]
                          ELSE ARRAY['refund', 'refund_paid', 'refund_reversed']::varchar[] END END""",
    }
    checks.update(PAYOUT_CHECKS)
    checks.update(REVIEW_CHECKS)
    found = []
    with engine.connect() as conn:
        for name, query in checks.items():
            rows = conn.execute(sa.text(query)).all()
            if rows:
                found.append(f"{name}: {rows[:5]}")
    return found


# Payout items against the ledger: each item reserved once; paid, failed and reversed items booked
# as their status says (reversals book `payout_reversed` with ref "<item id>:<cumulative cents>");
# and every worker's in-transit balance equals their items still pending or sending.
PAYOUT_CHECKS = {
    "payout items whose entries do not match their status": """
        SELECT i.id, i.status, k.kinds FROM payout_items i
        LEFT JOIN LATERAL (
            SELECT array_agg(DISTINCT e.kind ORDER BY e.kind) AS kinds,
                   count(*) FILTER (WHERE e.kind <> 'payout_reversed') AS singles
            FROM ledger_entries e WHERE e.ref_id = i.id OR e.ref_id LIKE i.id || ':%') k ON true
        WHERE k.kinds IS DISTINCT FROM CASE i.status
            WHEN 'paid' THEN ARRAY['payout_paid', 'payout_reserve']::varchar[]
            WHEN 'failed' THEN ARRAY['payout_failed', 'payout_reserve']::varchar[]
            WHEN 'reversed' THEN ARRAY['payout_paid', 'payout_reserve', 'payout_reversed']::varchar[]
            ELSE ARRAY['payout_reserve']::varchar[] END
           OR k.singles <> CASE i.status WHEN 'pending' THEN 1 WHEN 'sending' THEN 1 ELSE 2 END""",
    "workers' in-transit balances that differ from their unsettled payout items": """
        WITH transit AS (
            SELECT a.owner_id AS worker_id, a.currency, -SUM(l.amount_cents) AS cents
            FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id
            WHERE a.kind = 'worker_in_transit' GROUP BY a.owner_id, a.currency),
        unsettled AS (
            SELECT worker_id, currency, SUM(amount_cents) AS cents FROM payout_items
            WHERE status IN ('pending', 'sending') GROUP BY worker_id, currency)
        SELECT COALESCE(t.worker_id, u.worker_id), t.cents, u.cents
        FROM transit t FULL JOIN unsettled u ON u.worker_id = t.worker_id AND u.currency = t.currency
        WHERE COALESCE(t.cents, 0) <> COALESCE(u.cents, 0)""",
}


# Approvals against the ledger: every approved (or paid) submission has exactly one "approval"
# entry, and every approval entry of an existing submission is for an approved (or paid) one.
# (Approval entries whose ref is no submission at all are not flagged: tests/test_ledger.py books
# such entries on made-up ids to test the ledger alone.)
REVIEW_CHECKS = {
    "approved submissions without exactly one approval entry, or approval entries of unapproved ones": """
        SELECT s.id, s.status, count(e.id) FROM submissions s
        LEFT JOIN ledger_entries e ON e.kind = 'approval' AND e.ref_id = s.id
        GROUP BY s.id, s.status
        HAVING count(e.id) <> CASE WHEN s.status IN ('approved', 'paid') THEN 1 ELSE 0 END""",
}

@pytest.fixture
def standin(stripe_standin, live_server):
    """The Stripe stand-in with its webhooks going to the live app."""
    return stripe_standin


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db_session(app):
    from marketplace.extensions import db

    with app.app_context():
        yield db.session
        db.session.remove()
