"""The schema comes from migrations; the embedded SQLite default works; the demo and admin commands."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from marketplace import REPO_ROOT


def test_migrations_match_the_models(app):
    """Every model change has its migration: autogenerate finds nothing left to do."""
    from marketplace.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_demo_fills_an_empty_database_once(runner, client, db_session):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    brand_key = next(line.split("API key: ")[1] for line in result.output.splitlines() if line.startswith("Brand"))
    briefs = client.get("/v1/briefs", headers={"Authorization": f"Bearer {brand_key}"}).get_json()["data"]
    assert [b["status"] for b in briefs] == ["live"]
    assert briefs[0]["money"]["funded_cents"] == briefs[0]["money"]["committed_cents"] > 0
    assert db_session.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one() == 400
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
        "    lines = seed()\n"
        "    from marketplace.extensions import db\n"
        "    print(db.session.execute(db.text('select count(*) from tasks')).scalar())\n"
        "    print(app.config['REDIS_URL'])\n"
        "c = app.test_client()\n"
        "key = lines[0].split('API key: ')[1]\n"
        "print(c.get('/v1/briefs', headers={'Authorization': 'Bearer ' + key}).get_json()['data'][0]['status'])\n"
        "print(c.get('/readyz').status_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["400", "None", "live", "200"]


def test_create_admin_prints_the_key_alone_on_the_last_line(runner):
    result = runner.invoke(args=["create-admin", "root@example.com"])
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("mk_") and " " not in last
