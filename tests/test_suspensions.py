"""Suspending and reinstating workers: refused logins, claims and proof; claims ended; the balance
held (not paid, not lost) and released; payout batches skipping them; a suspension racing a claim."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tests.factories import (
    auth,
    claim,
    live_brief,
    make_admin,
    sign_up_brand,
    sign_up_worker,
    unique_email,
)
from tests.factories.payouts import approved_work, earnings, ready_worker, run_payout_jobs
from tests.factories.proofs import submit
from tests.factories.workforce import decide

PASSWORD = "correct horse battery"


def open_brief(client, standin, quantity: int = 10) -> tuple[dict, str]:
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": quantity, "unit_price_cents": 60, "instructions": "Write a caption",
         "proof": {"text": {"min_length": 20, "max_length": 300}}}])
    return brief, key


def worker_with_login(client) -> tuple[str, str, str]:
    """(worker id, email, token) of a new worker."""
    email = unique_email("worker")
    made = client.post("/v1/workers", json={"email": email, "password": PASSWORD, "display_name": "Sam",
                                            "country": "GB"})
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"], email, log_in(client, email).get_json()["token"]


def log_in(client, email: str):
    return client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})


def suspend(client, admin: str, worker_id: str, reason: str = "Same device as banned accounts"):
    return client.post(f"/v1/workers/{worker_id}/suspend", json={"reason": reason}, headers=auth(admin))


def reinstate(client, admin: str, worker_id: str, reason: str = "Appeal upheld"):
    return client.post(f"/v1/workers/{worker_id}/reinstate", json={"reason": reason}, headers=auth(admin))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.content_type == "application/problem+json"
    return response.get_json()


def claims_of(app, worker_id: str) -> list[tuple[str, str]]:
    """(claim status, its task's status) of each of the worker's claims."""
    from marketplace.extensions import db
    from marketplace.tasks.models import Claim, Task

    with app.app_context():
        try:
            return [tuple(row) for row in db.session.execute(
                sa.select(Claim.status, Task.status).join(Task, Task.id == Claim.task_id)
                .where(Claim.worker_id == worker_id).order_by(Claim.claimed_at))]
        finally:
            db.session.remove()


def held_tasks(app, worker_id: str) -> int:
    from marketplace.extensions import db
    from marketplace.tasks.models import Task

    with app.app_context():
        try:
            return db.session.scalar(sa.select(sa.func.count()).select_from(Task).where(
                Task.worker_id == worker_id, Task.status == "claimed"))
        finally:
            db.session.remove()


def ledger_balances(app, worker_id: str, currency: str = "usd") -> tuple[int, int]:
    """The worker's (available, held) balances, from the ledger."""
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger

    with app.app_context():
        try:
            return (ledger.balance(ledger.worker_available(worker_id, currency)),
                    ledger.balance(ledger.worker_held(worker_id, currency)))
        finally:
            db.session.remove()


def audit_actions(client, admin: str, worker_id: str) -> list[dict]:
    response = client.get(f"/v1/audit-events?subject={worker_id}", headers=auth(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_suspended_worker_cannot_log_in_claim_or_submit_and_their_claims_end(app, client, runner, standin):
    admin = make_admin(runner)
    brief, _ = open_brief(client, standin)
    group_id = brief["task_groups"][0]["id"]
    worker_id, email, token = worker_with_login(client)
    held = claim(client, token, group_id)

    response = suspend(client, admin, worker_id)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "suspended" and body["suspension"]["reason"] == "Same device as banned accounts"
    # The claim waiting for proof ended and its task is open for others again.
    assert claims_of(app, worker_id) == [("released", "open")]

    refused = assert_problem(log_in(client, email), 403)
    assert "suspended" in refused["detail"]
    assert "suspended" in assert_problem(client.post(f"/v1/task-groups/{group_id}/claim", headers=auth(token)),
                                         403)["detail"]
    proof = submit(client, token, held["task"]["id"], text="a caption long enough for the rules")
    assert "suspended" in assert_problem(proof, 403)["detail"]
    assert claims_of(app, worker_id) == [("released", "open")]  # the refusals changed nothing

    other = sign_up_worker(client)[1]
    assert claim(client, other, group_id)["task"]["id"] == held["task"]["id"]  # the reopened task

    response = reinstate(client, admin, worker_id)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "active" and response.get_json()["suspension"] is None
    assert log_in(client, email).status_code == 200
    claim(client, token, group_id)

    events = audit_actions(client, admin, worker_id)
    assert [(e["action"], e["reason"]) for e in events] == [
        ("worker.reinstated", "Appeal upheld"), ("worker.suspended", "Same device as banned accounts")]
    assert all(e["actor"].startswith("admin:") for e in events)


def test_proof_already_in_stays_for_review_when_its_worker_is_suspended(app, client, runner, standin):
    admin = make_admin(runner)
    brief, _ = open_brief(client, standin)
    worker_id, _, token = worker_with_login(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    assert submit(client, token, held["task"]["id"], text="a caption long enough for the rules").status_code == 202

    assert suspend(client, admin, worker_id).status_code == 200
    assert [status for status, _ in claims_of(app, worker_id)] == ["submitted"]


def test_suspending_twice_reinstating_the_active_and_bad_requests_are_refused_and_change_nothing(
        app, client, runner, standin):
    admin = make_admin(runner)
    worker_id, email, token = worker_with_login(client)
    _, brand_key = sign_up_brand(client)

    assert_problem(reinstate(client, admin, worker_id), 409)
    assert suspend(client, admin, worker_id, "first").status_code == 200
    assert "already suspended" in assert_problem(suspend(client, admin, worker_id, "second"), 409)["detail"]
    assert_problem(suspend(client, admin, "wrk_nope"), 404)
    assert_problem(reinstate(client, admin, "wrk_nope"), 404)
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5}):
        assert_problem(client.post(f"/v1/workers/{worker_id}/reinstate", json=body, headers=auth(admin)), 422)
    assert client.post(f"/v1/workers/{worker_id}/reinstate", json={"reason": "r"}).status_code == 401
    for secret in (brand_key, token):
        assert_problem(reinstate(client, secret, worker_id), 403)

    # Still suspended by the first suspension only, and audited once.
    assert assert_problem(log_in(client, email), 403)
    events = audit_actions(client, admin, worker_id)
    assert [(e["action"], e["reason"]) for e in events] == [("worker.suspended", "first")]
    assert reinstate(client, admin, worker_id).status_code == 200
    assert_problem(reinstate(client, admin, worker_id), 409)


def start_batch(client, admin: str) -> dict:
    response = client.post("/v1/payout-batches", json={"currency": "usd", "min_amount_cents": 100},
                           headers=auth(admin))
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def get_batch(client, admin: str, batch_id: str) -> dict:
    response = client.get(f"/v1/payout-batches/{batch_id}", headers=auth(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def pending_submissions(app, brief_id: str) -> list[str]:
    from marketplace.extensions import db
    from marketplace.proofs.models import Submission

    with app.app_context():
        try:
            return list(db.session.scalars(sa.select(Submission.id).where(Submission.brief_id == brief_id)))
        finally:
            db.session.remove()


def test_a_suspended_workers_balance_is_held_skipped_by_batches_and_paid_after_reinstatement(
        app, client, runner, standin):
    admin = make_admin(runner)
    (suspended, s_token, s_account), (other, o_token, o_account) = (ready_worker(client, standin) for _ in range(2))
    approved_work(app, client, standin, [(suspended["id"], s_token), (other["id"], o_token)], 300)
    _, brand_key = sign_up_brand(client)
    under_review = approved_work(app, client, standin, [(suspended["id"], s_token)], 200, status="needs_review",
                                 api_key=brand_key)

    assert suspend(client, admin, suspended["id"]).status_code == 200
    assert ledger_balances(app, suspended["id"]) == (0, 300)  # held, not gone
    assert earnings(client, o_token)["available_cents"] == 300
    # Money approved while suspended lands in available, where batches do not take it either.
    decide(client, brand_key, pending_submissions(app, under_review), "approve")
    assert ledger_balances(app, suspended["id"]) == (200, 300)

    batch = start_batch(client, admin)
    run_payout_jobs(app)
    done = get_batch(client, admin, batch["id"])
    assert {i["stripe_account_id"]: (i["amount_cents"], i["status"]) for i in done["items"]} == {
        o_account: (300, "paid")}
    assert [(s["worker_id"], s["reason"], s["available_cents"]) for s in done["skipped"]] == [
        (suspended["id"], "held", 200)]
    assert ledger_balances(app, suspended["id"]) == (200, 300)

    assert reinstate(client, admin, suspended["id"]).status_code == 200
    assert ledger_balances(app, suspended["id"]) == (500, 0)
    events = audit_actions(client, admin, suspended["id"])
    assert events[0]["detail"]["released_cents"] == {"usd": 300}
    assert events[1]["detail"]["held_cents"] == {"usd": 300}

    second = start_batch(client, admin)
    run_payout_jobs(app)
    paid = get_batch(client, admin, second["id"])
    assert {i["stripe_account_id"]: (i["amount_cents"], i["status"]) for i in paid["items"]} == {
        s_account: (500, "paid")}
    assert paid["skipped"] == []
    assert earnings(client, s_token)["paid_cents"] == 500


def test_a_suspension_racing_a_claim_never_leaves_the_worker_holding_the_task(app, client, runner, standin):
    """Real threads, each with its own connection: whichever commits first, the suspended worker
    ends up with no task (the claim is refused, or made and then ended by the suspension)."""
    admin = make_admin(runner)
    rounds = 8
    brief, _ = open_brief(client, standin, quantity=rounds)
    group_id = brief["task_groups"][0]["id"]
    outcomes = []
    for _ in range(rounds):
        worker_id, _, token = worker_with_login(client)
        barrier = threading.Barrier(2)
        results = {}

        def act(name, call, barrier=barrier, results=results):
            with app.test_client() as own:
                barrier.wait(timeout=30)
                results[name] = call(own).status_code

        threads = [
            threading.Thread(target=act, args=("suspend", lambda c, w=worker_id: suspend(c, admin, w))),
            threading.Thread(target=act, args=("claim", lambda c, t=token: c.post(
                f"/v1/task-groups/{group_id}/claim", headers=auth(t)))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results["suspend"] == 200 and results["claim"] in (201, 403), results
        assert held_tasks(app, worker_id) == 0
        assert all(status == "released" and task == "open" for status, task in claims_of(app, worker_id))
        outcomes.append(results["claim"])
    # Every task the race let a suspended worker take came back: all are open.
    from marketplace.extensions import db
    from marketplace.tasks.models import Task

    with app.app_context():
        statuses = set(db.session.scalars(sa.select(Task.status).where(Task.group_id == group_id)))
        db.session.remove()
    assert statuses == {"open"}, (statuses, outcomes)
