"""The payout schedule (PAYOUT_SCHEDULE): approved money reaches workers' Stripe accounts without an
admin, through real scheduler and RQ worker processes and the Stripe stand-in, once per worker however
many schedulers run."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.factories import auth, make_admin, wait_for
from tests.factories.jobs import run_job
from tests.factories.payouts import approved_work, earnings, ready_worker
from tests.factories.processes import start, stop

SCHEDULE_SECONDS = 2


def test_the_interval_is_read_from_the_setting_and_a_bad_one_is_refused_at_start_up():
    from marketplace import create_app
    from marketplace.jobs import Periodic, interval_seconds
    from workers.payouts import start_scheduled_batches

    assert [interval_seconds(t) for t in ("15m", "*/15 minutes", "90s", "1h", "900", "2 seconds")] == \
        [900, 900, 90, 3600, 900, 2]
    assert interval_seconds("off") is None and interval_seconds(None) is None
    entry = Periodic("p", start_scheduled_batches, 900, setting="PAYOUT_SCHEDULE")
    assert entry.interval({"PAYOUT_SCHEDULE": "5m"}) == 300 and entry.interval({"PAYOUT_SCHEDULE": "off"}) is None
    for bad in ("15 parsecs", "soon", "-5m"):
        with pytest.raises(ValueError, match="PAYOUT_SCHEDULE"):
            create_app({"PAYOUT_SCHEDULE": bad})
    with pytest.raises(ValueError, match="PAYOUT_MINIMUM_CENTS"):
        create_app({"PAYOUT_MINIMUM_CENTS": 0})


def test_a_scheduled_run_with_nobody_to_pay_writes_no_batch(app, client, standin, monkeypatch):
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 150)
    monkeypatch.setitem(app.config, "PAYOUT_MINIMUM_CENTS", 500)  # 150 is under it
    assert run_job(app, "workers.payouts.start_scheduled_batches", "default") == []
    from marketplace.extensions import db

    with app.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM payout_batches")) == 0
        assert db.session.scalar(sa.text("SELECT count(*) FROM payout_skips")) == 0
        db.session.remove()
    assert earnings(client, token)["available_cents"] == 150


@pytest.fixture
def scheduled_services(app):
    """Two scheduler processes (a deploy overlap) with a short payout schedule, and an RQ worker."""
    from marketplace.jobs import queue_name

    env = {**os.environ, "PAYOUT_SCHEDULE": f"{SCHEDULE_SECONDS}s", "PAYOUT_MINIMUM_CENTS": "100",
           "LOG_LEVEL": "WARNING"}
    processes = [start(["flask", "--app", "wsgi", "scheduler", "--tick", "0.2"], env) for _ in range(2)]
    # A SimpleWorker runs jobs in its own process: the forking worker builds the app afresh in each
    # job's child (a second or more on a busy test machine), slower than a 2 s schedule's jobs come.
    processes.append(start(["rq", "worker", "--url", app.config["REDIS_URL"], "-n", f"payouts-{os.getpid()}",
                            "--worker-class", "rq.worker.SimpleWorker",
                            queue_name("payouts", app), queue_name("default", app)], env))
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


@pytest.mark.slow
def test_approved_money_is_transferred_by_the_schedule_within_an_interval_once_per_worker(
        app, client, runner, standin, scheduled_services):
    people = [ready_worker(client, standin) for _ in range(4)]
    brief_id = approved_work(app, client, standin, [(w["id"], t) for w, t, _ in people], 250, status="needs_review")
    admin_key = make_admin(runner)
    from marketplace.extensions import db

    with app.app_context():
        submission_ids = list(db.session.scalars(sa.text("SELECT id FROM submissions WHERE brief_id = :b"),
                                                 {"b": brief_id}))
        db.session.remove()

    def transfers() -> list[dict]:
        return [t for t in standin.engine.stores["transfer"].values() if t["metadata"].get("payout_item_id")]

    assert transfers() == []
    # The schedulers' first slot enqueues every periodic job at once: let the worker get through them.
    from marketplace.jobs import queue

    with app.app_context():
        wait_for(lambda: queue("default").count == 0, timeout=60)
    approved_at = time.monotonic()
    decided = client.post("/v1/review/decisions", headers=auth(admin_key),
                          json={"submission_ids": submission_ids, "decision": "approve"})
    assert decided.status_code == 200 and decided.get_json()["approved"] == len(people), decided.get_json()
    wait_for(lambda: len(transfers()) == len(people), timeout=60, interval=0.05)
    latency = time.monotonic() - approved_at
    print(f"approval-to-transfer latency with a {SCHEDULE_SECONDS} s schedule: {latency:.2f} s")
    # At most one interval's wait for the next slot, then the batch, its job and four transfers.
    assert latency < SCHEDULE_SECONDS + 8, latency

    time.sleep(3 * SCHEDULE_SECONDS)  # more slots, on both schedulers: nothing is paid again
    assert Counter(t["metadata"]["worker_id"] for t in transfers()) == Counter({w["id"]: 1 for w, _, _ in people})
    with app.app_context():
        batches = db.session.execute(sa.text("SELECT created_by, status FROM payout_batches")).all()
        db.session.remove()
    assert batches == [("schedule", "completed")], batches  # idle slots wrote no empty batches
    for _, token, _ in people:
        assert wait_for(lambda token=token: earnings(client, token)["paid_cents"] == 250)
        assert earnings(client, token)["available_cents"] == 0
    for process in scheduled_services:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
