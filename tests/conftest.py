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

from tests.ledger_invariants import ledger_problems

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
WEBHOOK_SECRET = "whsec_test_marketplace"  # tests sign with it too (imported as tests.conftest)
CONNECT_WEBHOOK_SECRET = "whsec_test_marketplace_connect"  # the Connect endpoint's own


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
        "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
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
        # Every test client is 127.0.0.1, and tests sign up and log in dozens of workers each; the
        # real defaults are exercised in test_accounts.py.
        "LOGIN_RATE_LIMIT_PER_ADDRESS": "10000/minute",
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
    stripe_standin.set_webhook(url + "/v1/webhooks/stripe", WEBHOOK_SECRET,
                               connect_url=url + "/v1/webhooks/stripe/connect", connect_secret=CONNECT_WEBHOOK_SECRET)
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


class SqlStatements:
    """The SQL text the app's engine sends to PostgreSQL inside each `with recorder as statements:`
    block (a fresh list per block), to count statements or look for one."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement: str, *args) -> None:
        self.statements.append(statement)

    def __enter__(self) -> list[str]:
        self.statements = []
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


class DriverStatements:
    """Every statement this process hands psycopg inside each `with recorder as statements:` block,
    through the ORM's engine or the direct pools (marketplace/db/direct.py, which bypass
    SQLAlchemy's events), BEGIN and COMMIT included when sent as statements."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.statements: list[str] = []

    def __enter__(self) -> list[str]:
        import psycopg

        self.statements = statements = []
        execute = psycopg.Cursor.execute

        def recorded(cursor, query, *args, **kwargs):
            statements.append(query if isinstance(query, str) else repr(query))
            return execute(cursor, query, *args, **kwargs)

        self.monkeypatch.setattr(psycopg.Cursor, "execute", recorded)
        return statements

    def __exit__(self, *exc) -> None:
        self.monkeypatch.undo()


@pytest.fixture
def driver_statements() -> DriverStatements:
    with pytest.MonkeyPatch.context() as patch:
        yield DriverStatements(patch)


@pytest.fixture
def sql_statements(app) -> SqlStatements:
    from marketplace.extensions import db

    with app.app_context():
        return SqlStatements(db.engine)


@pytest.fixture
def db_session(app):
    from marketplace.extensions import db

    with app.app_context():
        yield db.session
        db.session.remove()
