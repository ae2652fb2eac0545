"""One-off bonuses: from a brief's unspent escrow to a worker who did approved work on it, once per
Idempotency-Key, refused when the escrow cannot cover them; paid by payout batches like approved work."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tests.factories import auth, make_admin, sign_up_brand, sign_up_worker
from tests.factories.bonuses import bonus_brief, pay
from tests.factories.payouts import approved_work, earnings, ready_worker, run_payout_jobs


def ledger_entries(db_session, kind: str) -> list:
    db_session.rollback()
    return db_session.execute(sa.text("SELECT ref_id FROM ledger_entries WHERE kind = :k"), {"k": kind}).all()


def bonus_rows(db_session) -> int:
    db_session.rollback()
    return db_session.execute(sa.text("SELECT count(*) FROM bonuses")).scalar_one()


def test_a_brand_pays_a_bonus_to_a_worker_from_its_unspent_escrow(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    before = earnings(client, token)

    response = pay(client, key, brief_id, worker["id"], 500, reason="Best clip of the week")
    assert response.status_code == 201, response.get_json()
    bonus = response.get_json()
    assert bonus["id"].startswith("bon_") and bonus["kind"] == "one_off"
    assert (bonus["amount_cents"], bonus["currency"], bonus["worker_id"]) == (500, "usd", worker["id"])
    assert bonus["created_by"].startswith("brand:")

    # In the worker's balance at once (no platform fee), in the feed, in the lists.
    after = earnings(client, token)
    assert after["available_cents"] == before["available_cents"] + 500
    assert after["bonus_cents"] == 500
    feed = client.get("/v1/me/notifications", headers=auth(token)).get_json()["data"]
    assert [(n["kind"], n["subject_id"], n["amount_cents"], n["message"]) for n in feed if n["kind"] == "bonus"] == [
        ("bonus", bonus["id"], 500, "Best clip of the week")]
    mine = client.get("/v1/me/bonuses", headers=auth(token)).get_json()["data"]
    assert [b["id"] for b in mine] == [bonus["id"]]
    listed = client.get("/v1/bonuses", query_string={"brief": brief_id}, headers=auth(key)).get_json()["data"]
    assert [b["id"] for b in listed] == [bonus["id"]]

    # One balanced entry of its own kind; the escrow can spare 500 less.
    assert ledger_entries(db_session, "bonus") == [(bonus["id"],)]
    spare = client.get(f"/v1/briefs/{brief_id}/unspent", headers=auth(key)).get_json()
    assert spare["unspent_cents"] == 2200 - 500


def test_an_admin_pays_a_bonus_on_any_brief(app, client, runner, standin):
    admin = make_admin(runner)
    worker, token = sign_up_worker(client)
    _, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    response = pay(client, admin, brief_id, worker["id"], 300)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created_by"].startswith("admin:")
    # Audited, once: who paid whom how much and why (a replay of the same key adds nothing).
    bonus = response.get_json()
    assert pay(client, admin, brief_id, worker["id"], 300, idempotency_key="audit-1").status_code == 201
    assert pay(client, admin, brief_id, worker["id"], 300, idempotency_key="audit-1").status_code == 201
    events = client.get("/v1/audit-events", query_string={"action": "bonus.paid"}, headers=auth(admin)).get_json()["data"]
    assert len(events) == 2
    first = next(e for e in events if e["subject"] == bonus["id"])
    assert first["actor"] == bonus["created_by"] and first["reason"] == "Great clip, thank you"
    assert first["detail"] == {"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 300, "currency": "usd"}


def test_a_bonus_to_a_worker_without_approved_work_on_the_brief_is_404(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    stranger, _ = sign_up_worker(client)
    waiting, waiting_token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    # Work on another brief, or work still waiting for review, is not approved work on this one.
    approved_work(app, client, standin, [(waiting["id"], waiting_token)], 200, status="needs_review", api_key=key)

    for someone in (stranger["id"], waiting["id"], "wrk_nobody"):
        response = pay(client, key, brief_id, someone, 100)
        assert response.status_code == 404, response.get_json()
        assert response.content_type == "application/problem+json"
    # Another brand's brief is not found either, never forbidden.
    _, other_key = sign_up_brand(client)
    assert pay(client, other_key, brief_id, worker["id"], 100).status_code == 404
    assert bonus_rows(db_session) == 0


def test_a_bonus_the_unspent_escrow_cannot_cover_is_422_and_moves_nothing(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    response = pay(client, key, brief_id, worker["id"], 2201)
    assert response.status_code == 422, response.get_json()
    assert "amount_cents" in response.get_json()["errors"]
    assert "2200" in response.get_json()["detail"]
    assert pay(client, key, brief_id, worker["id"], 2200).status_code == 201  # exactly what is spare
    assert pay(client, key, brief_id, worker["id"], 1).status_code == 422


def test_escrow_promised_to_open_tasks_is_not_spent_on_bonuses(app, client, standin, db_session):
    """A running brief's escrow holds what its open tasks may cost: none of it can spare a bonus."""
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)], spare=False)
    assert client.get(f"/v1/briefs/{brief_id}/unspent", headers=auth(key)).get_json()["unspent_cents"] == 0
    assert pay(client, key, brief_id, worker["id"], 1).status_code == 422
    assert bonus_rows(db_session) == 0


def test_bad_bonus_requests_are_refused_with_a_problem(app, client, runner, standin):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    for body, field in [
        ({"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 0, "reason": "x"}, "amount_cents"),
        ({"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 1.5, "reason": "x"}, "amount_cents"),
        ({"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": "100", "reason": "x"}, "amount_cents"),
        ({"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 100, "reason": ""}, "reason"),
        ({"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 100}, "reason"),
        ({"worker_id": worker["id"], "amount_cents": 100, "reason": "x"}, "brief_id"),
    ]:
        response = client.post("/v1/bonuses", json=body, headers=auth(key))
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"], response.get_json()
    # A worker cannot pay bonuses; nobody without a key can.
    assert pay(client, token, brief_id, worker["id"], 100).status_code == 403
    assert client.post("/v1/bonuses", json={}).status_code == 401


def test_a_bonus_on_a_closed_brief_is_409(app, client, standin):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    assert client.post(f"/v1/briefs/{brief_id}/cancel", headers=auth(key)).status_code == 200
    response = pay(client, key, brief_id, worker["id"], 100)
    assert response.status_code == 409, response.get_json()


def test_two_identical_bonus_requests_with_one_key_pay_once(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    results: list[int] = []
    barrier = threading.Barrier(6)

    def post():
        with app.test_client() as c:
            barrier.wait()
            results.append(pay(c, key, brief_id, worker["id"], 400, idempotency_key="bonus-1").status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) <= {201, 409} and 201 in results, results
    # Asked again once they are all done: the first answer, replayed, and still one payment.
    replay = pay(client, key, brief_id, worker["id"], 400, idempotency_key="bonus-1")
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert bonus_rows(db_session) == 1
    assert len(ledger_entries(db_session, "bonus")) == 1
    assert earnings(client, token)["bonus_cents"] == 400


def test_a_retry_whose_first_answer_was_lost_finds_the_first_bonus(app, client, standin, db_session):
    """The Idempotency-Key gives the bonus its id: a retry after a lost answer (the key's record let
    go, as for a 503) pays nothing more."""
    from marketplace.auth.service import Principal
    from marketplace.bonuses import service

    worker, token = sign_up_worker(client)
    _, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    admin = Principal("admin", "adm_test")
    args = {"brief_id": brief_id, "worker_id": worker["id"], "amount_cents": 250, "reason": "thanks",
            "bonus_id": "bon_" + "a" * 32}
    first, paid_now = service.pay_bonus(admin, **args)
    again, paid_again = service.pay_bonus(admin, **args)
    assert (paid_now, paid_again) == (True, False) and again.id == first.id
    assert bonus_rows(db_session) == 1
    assert db_session.execute(sa.text("SELECT count(*) FROM audit_events WHERE action = 'bonus.paid'")).scalar_one() == 1


def test_concurrent_bonuses_never_spend_more_than_the_escrow_can_spare(app, client, standin, db_session):
    """Eight bonuses of 500 race for 2,200 spare cents: four are paid, four are 422, never an overdraft."""
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    results: list[int] = []
    barrier = threading.Barrier(8)

    def post(i: int):
        with app.test_client() as c:
            barrier.wait()
            results.append(pay(c, key, brief_id, worker["id"], 500, idempotency_key=f"race-{i}").status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] * 4 + [422] * 4, results
    assert earnings(client, token)["bonus_cents"] == 2000


def test_a_bonus_is_paid_by_the_next_payout_batch(app, client, runner, standin, db_session):
    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    assert pay(client, key, brief_id, worker["id"], 700).status_code == 201

    batch = client.post("/v1/payout-batches", json={"currency": "usd", "min_amount_cents": 1}, headers=auth(admin))
    assert batch.status_code == 202, batch.get_json()
    run_payout_jobs(app)
    detail = client.get(f"/v1/payout-batches/{batch.get_json()['id']}", headers=auth(admin)).get_json()
    assert [(i["worker_id"], i["amount_cents"], i["status"]) for i in detail["items"]] == [
        (worker["id"], 200 + 700, "paid")]
    assert earnings(client, token)["paid_cents"] == 900


def test_the_ledger_invariants_catch_a_bonus_entry_of_no_bonus(db_session):
    """The bonus checks of tests/ledger_invariants.py can fail: a bonus entry with no bonus behind it
    is reported (written in a transaction that is then rolled back)."""
    from contextlib import contextmanager

    from marketplace.ledger import service as ledger
    from tests.ledger_invariants import ledger_problems

    ledger.post("bonus", "bon_" + "f" * 32, [(ledger.stripe_clearing("usd"), 100),
                                             (ledger.worker_available("wrk_nobody", "usd"), -100)])

    class ThisTransaction:
        @contextmanager
        def connect(self):
            yield db_session.connection()

    try:
        problems = ledger_problems(ThisTransaction())
    finally:
        db_session.rollback()
    assert any(p.startswith("bonus entries of no bonus") for p in problems), problems
