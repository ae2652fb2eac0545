"""Money states the contract promises: submissions and tasks paid when their transfer settles and
approved again when it is reversed; who a batch left out; a batch read in one snapshot; our own
payout block ordered by Stripe event time; person-only cases (issue 11 §2)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.factories import auth, make_admin, wait_for
from tests.factories.payouts import approved_work, earnings, ready_worker, run_payout_jobs
from tests.test_payouts import get_batch, start_batch, stripe_client


def _submissions_of(db_session, brief_id: str) -> dict[str, tuple[str, str]]:
    """submission id → (its status, its task's status)."""
    db_session.rollback()
    return {sid: (status, task_status) for sid, status, task_status in db_session.execute(sa.text(
        "SELECT s.id, s.status, t.status FROM submissions s JOIN tasks t ON t.id = s.task_id "
        "WHERE s.brief_id = :b"), {"b": brief_id})}


def _group_counts(client, admin: str, brief_id: str) -> dict:
    body = client.get(f"/v1/briefs/{brief_id}", headers=auth(admin)).get_json()
    return body["task_groups"][0]["counts"]


def test_submissions_tasks_and_group_counts_are_paid_when_the_transfer_settles_and_approved_again_on_reversal(
        app, client, runner, standin, db_session):
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(2)]
    brief_id = approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 300)
    assert set(_submissions_of(db_session, brief_id).values()) == {("approved", "approved")}
    assert _group_counts(client, admin, brief_id)["approved"] == 2

    batch = start_batch(client, admin)
    # Reserved is not paid: nothing settled at Stripe yet.
    assert set(_submissions_of(db_session, brief_id).values()) == {("approved", "approved")}
    run_payout_jobs(app)
    assert set(_submissions_of(db_session, brief_id).values()) == {("paid", "paid")}
    counts = _group_counts(client, admin, brief_id)
    assert (counts["approved"], counts["paid"]) == (0, 2)
    token = workers[0][1]
    mine = client.get("/v1/me/submissions", headers=auth(token)).get_json()["data"]
    assert [(s["status"], bool(s["paid_at"]), s["reversal"]) for s in mine] == [("paid", True, None)]

    # One worker's transfer is reversed: that worker's submission and task are approved again.
    item = next(i for i in get_batch(client, admin, batch["id"])["items"] if i["worker_id"] == workers[0][0]["id"])
    stripe_client().v1.transfers.reversals.create(item["stripe_transfer_id"])
    assert standin.wait_for_webhooks(10)
    wait_for(lambda: earnings(client, token)["available_cents"] == 300)
    mine = client.get("/v1/me/submissions", headers=auth(token)).get_json()["data"]
    assert [(s["status"], s["paid_at"]) for s in mine] == [("approved", None)]
    assert item["stripe_transfer_id"] in mine[0]["reversal"]["detail"] and mine[0]["reversal"]["reversed_at"]
    assert sorted(_submissions_of(db_session, brief_id).values()) == [("approved", "approved"), ("paid", "paid")]
    counts = _group_counts(client, admin, brief_id)
    assert (counts["approved"], counts["paid"]) == (1, 1)

    # The next batch carries it again, and paying it makes it paid again.
    again = start_batch(client, admin)
    assert again["progress"]["total"] == 1
    run_payout_jobs(app)
    assert set(_submissions_of(db_session, brief_id).values()) == {("paid", "paid")}
    assert _group_counts(client, admin, brief_id)["paid"] == 2


def test_a_failed_transfer_leaves_its_submissions_approved_for_the_next_batch(app, client, runner, standin, db_session):
    admin = make_admin(runner)
    worker, token, account_id = ready_worker(client, standin)
    brief_id = approved_work(app, client, standin, [(worker["id"], token)], 400)
    # Stripe refuses the transfer (the destination lost its transfers capability, and no
    # account.updated has told us yet): the item fails and the money comes back.
    capabilities = standin.engine.stores["account"][account_id]["capabilities"]
    capabilities["transfers"] = "inactive"
    start_batch(client, admin)
    run_payout_jobs(app)
    assert set(_submissions_of(db_session, brief_id).values()) == {("approved", "approved")}
    capabilities["transfers"] = "active"
    start_batch(client, admin)
    run_payout_jobs(app)
    assert set(_submissions_of(db_session, brief_id).values()) == {("paid", "paid")}


def test_a_batch_says_who_it_left_out_and_why(app, client, runner, standin):
    from tests.factories import sign_up_worker
    from tests.factories.payouts import payout_account

    admin = make_admin(runner)
    paid, paid_token, _ = ready_worker(client, standin)
    small, small_token, _ = ready_worker(client, standin)
    not_onboarded, not_onboarded_token = sign_up_worker(client)
    payout_account(client, not_onboarded_token)
    no_account, no_account_token = sign_up_worker(client)
    approved_work(app, client, standin, [(paid["id"], paid_token), (not_onboarded["id"], not_onboarded_token),
                                         (no_account["id"], no_account_token)], 500)
    approved_work(app, client, standin, [(small["id"], small_token)], 99)

    batch = start_batch(client, admin, min_amount_cents=100)
    run_payout_jobs(app)
    body = get_batch(client, admin, batch["id"])
    assert [(i["worker_id"], i["worker_name"]) for i in body["items"]] == [(paid["id"], "Sam")]
    assert sorted((s["worker_id"], s["reason"], s["available_cents"], s["worker_name"]) for s in body["skipped"]) == \
        sorted([(small["id"], "under_minimum", 99, "Sam"), (not_onboarded["id"], "payouts_disabled", 500, "Sam"),
                (no_account["id"], "no_payout_account", 500, "Sam")])
    # Workers paid in full have nothing left, so a later batch leaves out only those still owed.
    later = get_batch(client, admin, start_batch(client, admin, min_amount_cents=1)["id"])
    assert {s["worker_id"] for s in later["skipped"]} == {not_onboarded["id"], no_account["id"]}


def test_a_batch_read_while_its_items_change_always_agrees_with_itself(app, client, runner, standin):
    """One thread flips items between pending and paid, committing each flip; the batch read
    meanwhile always shows a summary that counts exactly the items it lists."""
    import threading

    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(3)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 200)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    item_ids = [i["id"] for i in get_batch(client, admin, batch["id"])["items"]]

    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    stop = threading.Event()

    def flip() -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                for status in ("pending", "paid"):
                    for item_id in item_ids:
                        conn.execute(sa.text("UPDATE payout_items SET status = :s WHERE id = :id"),
                                     {"s": status, "id": item_id})
                        conn.commit()

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for _ in range(150):
            body = get_batch(client, admin, batch["id"])
            paid = [i for i in body["items"] if i["status"] == "paid"]
            assert body["progress"] == {"done": len(paid), "total": 3}, body
            assert body["totals"]["paid_cents"] == 200 * len(paid)
            assert body["totals"]["pending_cents"] == 200 * (3 - len(paid))
    finally:
        stop.set()
        flipper.join()
        engine.dispose()


def _signed_post(client, path: str, event: dict, secret: str):
    import json

    import stripe

    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    return client.post(path, data=body.encode(), headers={"Content-Type": "application/json",
                                                          "Stripe-Signature": header})


def _connect_event(kind: str, account_id: str, created: int, obj: dict) -> dict:
    import uuid

    return {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "created": created, "account": account_id,
            "data": {"object": obj}}


def _account_state(account_id: str, *, ready: bool = True, bank_error: bool = False) -> dict:
    errors = [{"code": "verification_failed_other", "reason": "The bank account was closed.",
               "requirement": "external_account"}] if bank_error else []
    return {"id": account_id, "object": "account", "payouts_enabled": ready, "details_submitted": True,
            "capabilities": {"transfers": "active"},
            "requirements": {"currently_due": [], "past_due": [], "eventually_due": [], "errors": errors}}


def test_a_failed_bank_payout_blocks_the_account_until_a_newer_good_account_updated(app, client, runner, standin):
    import time

    from tests.conftest import CONNECT_WEBHOOK_SECRET

    connect = "/v1/webhooks/stripe/connect"
    admin = make_admin(runner)
    worker, token, account_id = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    failed_at = int(time.time()) + 1000

    def deliver(kind: str, created: int, obj: dict) -> None:
        response = _signed_post(client, connect, _connect_event(kind, account_id, created, obj), CONNECT_WEBHOOK_SECRET)
        assert response.status_code == 200, response.get_json()

    def account() -> dict:
        return client.get("/v1/me/payout-account", headers=auth(token)).get_json()

    deliver("payout.failed", failed_at, {"id": "po_bad", "object": "payout", "amount": 300, "currency": "usd",
                                         "status": "failed", "failure_code": "account_closed"})
    assert "account_closed" in account()["blocked_reason"] and account()["blocked_since"]
    # Stripe turns payouts back on, but in an event older than the failure (delivered late): still blocked.
    deliver("account.updated", failed_at - 100, _account_state(account_id))
    assert account()["payouts_enabled"] is True and account()["blocked_reason"]
    # Newer, but the bank account is still in error: still blocked.
    deliver("account.updated", failed_at + 100, _account_state(account_id, bank_error=True))
    assert account()["blocked_reason"]
    batch = get_batch(client, admin, start_batch(client, admin)["id"])
    assert batch["progress"]["total"] == 0
    assert [(s["worker_id"], s["reason"]) for s in batch["skipped"]] == [(worker["id"], "payout_account_blocked")]

    # Newer and good: lifted. A copy of the old failure delivered after that does not block again.
    deliver("account.updated", failed_at + 200, _account_state(account_id))
    assert account()["blocked_reason"] is None and account()["blocked_since"] is None
    deliver("payout.failed", failed_at, {"id": "po_bad2", "object": "payout", "amount": 300, "currency": "usd",
                                         "status": "failed", "failure_code": "account_closed"})
    assert account()["blocked_reason"] is None
    # (payout.failed still turns Stripe's flag off until Stripe says otherwise.)
    deliver("account.updated", failed_at + 300, _account_state(account_id))
    assert start_batch(client, admin)["progress"]["total"] == 1
    run_payout_jobs(app)
    assert earnings(client, token)["paid_cents"] == 300


# Person-only cases ---------------------------------------------------------------------------------


def _failed_refund(client, standin, db_session) -> tuple[str, dict, dict, str]:
    """A cancelled brief whose refund the bank failed later: (brand key, brief, funding, first refund id)."""
    from tests.factories import create_brief, fund_brief, sign_up_brand

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    funded = fund_brief(client, key, brief["id"], standin)
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()["money"]["refunded_cents"] \
        == 30800
    db_session.rollback()
    refund_id, stripe_refund_id = db_session.execute(sa.text(
        "SELECT id, stripe_refund_id FROM refunds WHERE brief_id = :b"), {"b": brief["id"]}).one()
    standin.fail_refund(stripe_refund_id)
    assert standin.wait_for_webhooks(10)
    return key, brief, funded, refund_id


def _open_cases(client, admin: str, **query) -> list[dict]:
    response = client.get("/v1/admin/cases", query_string=query, headers=auth(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_refund_the_bank_failed_is_a_case_a_person_retries_once_with_a_key_of_its_attempt(
        app, client, runner, standin, db_session):
    admin = make_admin(runner)
    key, brief, funded, refund_id = _failed_refund(client, standin, db_session)
    case, = _open_cases(client, admin, status="open")
    assert (case["kind"], case["subject_id"], case["amount_cents"]) == ("refund_failed", refund_id, 30800)
    assert "failed later" in case["detail"]
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["refunded_cents"] == 0

    retried = client.post(f"/v1/admin/cases/{case['id']}/retry", json={"reason": "brand gave a new card"},
                          headers=auth(admin))
    assert retried.status_code == 200, retried.get_json()
    body = retried.get_json()
    assert (body["status"], body["attempts"]) == ("resolved", 1)
    assert [(a["action"], a["actor"].split(":")[0], a["reason"]) for a in body["actions"]] == [
        ("case.retry", "admin", "brand gave a new card"), ("case.resolved", "stripe", None)]
    assert body["actions"][0]["detail"]["idempotency_key"] == f"refund-{refund_id}-attempt-2"

    refunds = stripe_client().v1.refunds.list(params={"payment_intent": funded["payment_intent_id"]}).data
    assert sorted(r.status for r in refunds) == ["failed", "succeeded"]
    made = next(r for r in refunds if r.status == "succeeded")
    events = stripe_client().v1.events.list(params={"type": "refund.created", "limit": 100}).data
    assert next(e for e in events if e.data.object.id == made.id).request.idempotency_key \
        == f"refund-{refund_id}-attempt-2"
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["refunded_cents"] == 30800 and money["remaining_cents"] == 0

    # Never twice: a resolved case is not retried or settled again, and Stripe holds one refund made.
    again = client.post(f"/v1/admin/cases/{case['id']}/retry", json={}, headers=auth(admin))
    assert again.status_code == 409 and again.headers["Content-Type"] == "application/problem+json"
    assert client.post(f"/v1/admin/cases/{case['id']}/settle", json={"reason": "x"},
                       headers=auth(admin)).status_code == 409
    assert len(stripe_client().v1.refunds.list(params={"payment_intent": funded["payment_intent_id"]}).data) == 2
    assert _open_cases(client, admin, status="open") == []


def test_a_retried_refund_that_fails_again_opens_its_case_again(app, client, runner, standin, db_session):
    admin = make_admin(runner)
    _, _, funded, refund_id = _failed_refund(client, standin, db_session)
    case, = _open_cases(client, admin)
    # Someone refunded the charge by hand meanwhile: Stripe refuses the retry.
    stripe_client().v1.refunds.create(params={"payment_intent": funded["payment_intent_id"]})
    body = client.post(f"/v1/admin/cases/{case['id']}/retry", json={}, headers=auth(admin)).get_json()
    assert (body["status"], body["attempts"]) == ("open", 1) and "attempt 2" in body["detail"]
    assert [c["id"] for c in _open_cases(client, admin, status="open")] == [case["id"]]


def test_cases_are_settled_with_a_reason_by_a_named_person_and_bad_input_is_4xx(app, client, runner, standin, db_session):
    admin = make_admin(runner)
    _failed_refund(client, standin, db_session)
    case, = _open_cases(client, admin)
    path = f"/v1/admin/cases/{case['id']}/settle"
    for bad in ({}, {"reason": ""}, {"reason": "x", "outcome": "paid"}, {"reason": 5}):
        response = client.post(path, json=bad, headers=auth(admin))
        assert response.status_code == 422, (bad, response.get_json())
        assert response.headers["Content-Type"] == "application/problem+json"
    assert client.post("/v1/admin/cases/case_nope/settle", json={"reason": "x"}, headers=auth(admin)).status_code == 404
    assert client.post("/v1/admin/cases/case_nope/retry", json={}, headers=auth(admin)).status_code == 404
    assert client.get("/v1/admin/cases?status=nope", headers=auth(admin)).status_code == 422
    assert client.get("/v1/admin/cases", headers=auth(sign_up_worker_token(client))).status_code == 403

    settled = client.post(path, json={"reason": "refunded by bank transfer, ref 123"}, headers=auth(admin)).get_json()
    assert settled["status"] == "settled" and settled["closed_by"].startswith("admin:adm_")
    assert [(a["action"], a["reason"]) for a in settled["actions"]] == [("case.settle", "refunded by bank transfer, ref 123")]
    assert client.post(f"/v1/admin/cases/{case['id']}/retry", json={}, headers=auth(admin)).status_code == 409
    spec = client.get("/openapi.json").get_json()
    assert {"/v1/admin/cases", "/v1/admin/cases/{case_id}", "/v1/admin/cases/{case_id}/retry",
            "/v1/admin/cases/{case_id}/settle"} <= set(spec["paths"])


def sign_up_worker_token(client) -> str:
    from tests.factories import sign_up_worker

    return sign_up_worker(client)[1]


def test_a_transfer_unlike_its_item_is_a_case_settled_by_a_person_from_the_cli(app, client, runner, standin):
    from marketplace.extensions import db
    from tests.test_payouts import run_batch_now, transfers_in

    admin = make_admin(runner)
    worker, token, account_id = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 250)
    batch = start_batch(client, admin)
    item_id = get_batch(client, admin, batch["id"])["items"][0]["id"]
    with app.app_context():  # a runner died between marking the item and hearing Stripe's answer
        db.session.execute(sa.text("UPDATE payout_items SET status = 'sending', attempts = 1 WHERE id = :id"),
                           {"id": item_id})
        db.session.commit()
    stripe_client().v1.transfers.create(params={
        "amount": 999, "currency": "usd", "destination": account_id, "transfer_group": batch["id"],
        "metadata": {"payout_item_id": item_id}})
    run_batch_now(app, batch["id"], unknown_retries=0)
    transfer, = transfers_in(batch["id"])

    listed = runner.invoke(args=["cases", "list", "--status", "open"])
    assert listed.exit_code == 0 and "transfer_mismatch" in listed.output and item_id in listed.output
    case, = _open_cases(client, admin, kind="transfer_mismatch")
    assert (case["subject_id"], case["stripe_object_id"]) == (item_id, transfer.id)
    # Looked up again, it still differs: open, nothing sent.
    body = client.post(f"/v1/admin/cases/{case['id']}/retry", json={"reason": "check again"}, headers=auth(admin)).get_json()
    assert (body["status"], body["attempts"]) == ("open", 1) and len(transfers_in(batch["id"])) == 1

    assert runner.invoke(args=["cases", "settle", case["id"], "--by", "ops@example.com",
                               "--reason", "x"]).exit_code != 0  # a mismatch needs the item's outcome
    settled = runner.invoke(args=["cases", "settle", case["id"], "--by", "ops@example.com", "--outcome", "failed",
                                  "--reason", "transfer reversed by hand at Stripe"])
    assert settled.exit_code == 0, settled.output
    assert "settled" in settled.output and "cli:ops@example.com case.settle" in settled.output
    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed_with_failures" and done["items"][0]["status"] == "failed"
    assert "transfer reversed by hand" in done["items"][0]["failure_reason"]
    assert earnings(client, token)["available_cents"] == 250
