"""Payouts under races and crashes: separate processes, SIGKILLed runners, connections dropped after Stripe committed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import auth, make_admin, wait_for
from tests.factories.payouts import (
    approved_work,
    create_and_pay_batch_in_process,
    earnings,
    ready_worker,
    run_payout_jobs,
)

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def items_by_status(app) -> dict[str, list[str]]:
    from marketplace.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text("SELECT status, id FROM payout_items ORDER BY id")).all()
        db.session.remove()
    out: dict[str, list[str]] = {}
    for status, item_id in rows:
        out.setdefault(status, []).append(item_id)
    return out


def test_two_batches_started_at_once_in_separate_processes_pay_each_balance_once(app, client, standin):
    workers = [ready_worker(client, standin) for _ in range(6)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 300)
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers[:3]], 150)
    available_before = {w["id"]: earnings(client, t)["available_cents"] for w, t, _ in workers}

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    processes = [ctx.Process(target=create_and_pay_batch_in_process, args=(barrier, results, "usd", 100))
                 for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    batch_ids = {results.get(timeout=5) for _ in processes}
    assert len(batch_ids) == 2

    from marketplace.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text(
            "SELECT worker_id, count(*), sum(amount_cents), bool_and(status = 'paid') FROM payout_items "
            "GROUP BY worker_id")).all()
        statuses = dict(db.session.execute(sa.text("SELECT id, status FROM payout_batches")).all())
        db.session.remove()
    assert {worker_id: (n, int(total), paid) for worker_id, n, total, paid in rows} == {
        worker_id: (1, cents, True) for worker_id, cents in available_before.items()}
    assert set(statuses.values()) == {"completed"}
    counts = standin.transfer_counts()
    assert counts["total"] == 6 and set(counts["counts"].values()) == {1}
    assert sum(t.amount for t in _transfers(batch_ids)) == sum(available_before.values())
    for worker, token, _ in workers:
        mine = earnings(client, token)
        assert (mine["available_cents"], mine["paid_cents"]) == (0, available_before[worker["id"]])


def _transfers(batch_ids) -> list:
    import stripe

    client = stripe.StripeClient(os.environ["STRIPE_API_KEY"], base_addresses={"api": os.environ["STRIPE_API_BASE"]})
    return [t for b in batch_ids for t in client.v1.transfers.list(params={"transfer_group": b, "limit": 100}).data]


def test_runner_killed_after_stripe_accepted_transfers_is_completed_by_the_rerun(app, client, runner, standin):
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(8)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 200)
    batch = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()

    # Every transfer takes 300 ms inside the stand-in before it commits: the kill lands while
    # one is in flight, which Stripe then completes for a client that no longer exists.
    standin.set_faults(delay_ms=300, path_prefix="/v1/transfers")
    worker_process = subprocess.Popen(
        [str(REPO / ".venv/bin/rq"), "worker", "--burst", "--worker-class", "rq.worker.SimpleWorker",
         "--url", os.environ["REDIS_URL"], "payouts"],
        cwd=REPO, env=os.environ.copy(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: standin.transfer_counts()["total"] >= 2, timeout=60, interval=0.01)
    finally:
        os.killpg(worker_process.pid, signal.SIGKILL)  # SimpleWorker: the job runs in this very process
        worker_process.wait(10)
    time.sleep(0.6)  # the in-flight transfer finishes at "Stripe"
    standin.clear_faults()

    made_at_stripe = set(standin.transfer_counts()["counts"])
    left = items_by_status(app)
    unrecorded = made_at_stripe & set(left.get("sending", []))
    never_sent = set(left.get("sending", [])) - made_at_stripe
    assert unrecorded, (left, made_at_stripe)  # accepted by Stripe, not recorded by us
    assert never_sent or left.get("pending"), left  # and work the dead runner never reached

    run_payout_jobs(app)  # nothing queued: the job died with its worker
    with app.app_context():
        from workers.payouts import process_batch

        summary = process_batch(batch["id"])
    assert summary["status"] == "completed" and summary["progress"] == {"done": 8, "total": 8}
    done = items_by_status(app)
    assert set(done) == {"paid"} and len(done["paid"]) == 8
    counts = standin.transfer_counts()
    assert counts["total"] == 8 and counts["counts"] == {item_id: 1 for item_id in done["paid"]}
    assert all(earnings(client, t)["paid_cents"] == 200 for _, t, _ in workers)


def test_connection_dropped_after_stripe_committed_is_looked_up_not_resent(app, client, runner, standin):
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(4)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 250)
    batch = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()

    standin.set_faults(drop_after_commit=2, path_prefix="/v1/transfers")
    run_payout_jobs(app)

    body = client.get(f"/v1/payout-batches/{batch['id']}", headers=auth(admin)).get_json()
    assert body["status"] == "completed" and body["progress"] == {"done": 4, "total": 4}
    assert all(i["status"] == "paid" and i["stripe_transfer_id"] for i in body["items"])
    counts = standin.transfer_counts()
    assert counts["total"] == 4 and counts["counts"] == {i["id"]: 1 for i in body["items"]}
    dropped = [i for i in body["items"] if i["attempts"] == 1]
    assert len(dropped) == 4  # the lookup found the two dropped ones: nothing was sent twice


def test_second_runner_on_the_same_batch_steps_aside(app, client, runner, standin):
    """`flask payouts resume` while the job runs: one runner per batch, the other leaves it alone."""
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(3)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 200)
    batch = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()
    standin.set_faults(delay_ms=300, path_prefix="/v1/transfers")
    cli = subprocess.Popen([str(REPO / ".venv/bin/flask"), "--app", "wsgi", "payouts", "resume", batch["id"]],
                           cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        wait_for(lambda: standin.transfer_counts()["total"] >= 1, timeout=60, interval=0.01)
        with app.app_context():
            from marketplace.payouts import service

            assert service.process_batch(batch["id"])["skipped"]
    finally:
        output, _ = cli.communicate(timeout=60)
    standin.clear_faults()
    assert cli.returncode == 0, output
    assert "completed, 3/3 done" in output
    counts = standin.transfer_counts()
    assert counts["total"] == 3 and set(counts["counts"].values()) == {1}
