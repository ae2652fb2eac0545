"""Funding through the Stripe stand-in, signed webhooks handled once, cancelling with refunds."""

from __future__ import annotations

import json
import time
import uuid

import sqlalchemy as sa
import stripe

from tests.conftest import WEBHOOK_SECRET
from tests.factories import auth, create_brief, fund_brief, live_brief, sign_up_brand, wait_for


def signed(payload: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
    return body, header


def post_webhook(client, body: bytes, header: str | None):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return client.post("/v1/webhooks/stripe", data=body, headers=headers)


def state(db_session) -> tuple:
    return tuple(db_session.execute(sa.text(q)).scalar_one() for q in (
        "SELECT count(*) FROM ledger_entries", "SELECT count(*) FROM stripe_events",
        "SELECT string_agg(status, ',' ORDER BY id) FROM briefs",
        "SELECT string_agg(status, ',' ORDER BY id) FROM payments"))


def test_fund_creates_a_payment_intent_for_tasks_plus_fees_and_the_webhook_funds_escrow(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    response = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key))
    assert response.status_code == 201
    body = response.get_json()
    assert body["amount_cents"] == brief["money"]["committed_cents"] == 30800
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["status"] == "draft"

    standin.succeed_payment_intent(body["payment_intent_id"])
    wait_for(lambda: client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["status"] == "funded")
    funded = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert funded["money"]["funded_cents"] == 30800 and funded["money"]["remaining_cents"] == 30800
    assert funded["funded_at"] is not None


def test_asking_to_fund_twice_reuses_the_payment_intent(client, standin):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    first = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    second = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    assert first["payment_intent_id"] == second["payment_intent_id"]
    assert first["payment_id"] == second["payment_id"]


def test_the_full_flow_from_sign_up_to_published_tasks(client, standin, db_session):
    _, key = sign_up_brand(client)
    plan = client.post("/v1/briefs/plan", headers=auth(key), json={
        "budget_cents": 48000, "fee_bps": 0, "mix": [
            {"kind": "caption", "unit_price_cents": 60, "share": 180},
            {"kind": "clip", "unit_price_cents": 100, "share": 100}]}).get_json()
    groups = [{"kind": g["kind"], "quantity": g["quantity"], "unit_price_cents": g["unit_price_cents"]}
              for g in plan["task_groups"]]
    brief = live_brief(client, key, standin, budget_cents=60000, task_groups=groups)
    assert brief["status"] == "live"
    n_tasks = db_session.execute(sa.text("SELECT count(*) FROM tasks WHERE brief_id = :b"), {"b": brief["id"]}).scalar_one()
    assert n_tasks == sum(g["quantity"] for g in groups)
    assert brief["money"]["funded_cents"] == brief["money"]["committed_cents"]


def test_forged_stale_future_and_unsigned_webhooks_are_400_and_change_nothing(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    event = {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.succeeded", "created": int(time.time()),
             "data": {"object": {"id": intent["payment_intent_id"], "object": "payment_intent",
                                 "amount": 30800, "amount_received": 30800, "currency": "usd",
                                 "metadata": {"payment_id": intent["payment_id"]}}}}
    before = state(db_session)
    now = int(time.time())
    cases = [
        signed(event, secret="whsec_wrong"),
        signed(event, timestamp=now - 301),
        signed(event, timestamp=now + 301),
        (signed(event)[0], None),
        (signed(event)[0], "t=garbage,v1=deadbeef"),
        (json.dumps({**event, "data": {"object": {**event["data"]["object"], "amount_received": 1}}}).encode(),
         signed(event)[1]),  # signature of another body
    ]
    for body, header in cases:
        response = post_webhook(client, body, header)
        assert response.status_code == 400, header
        assert response.content_type == "application/problem+json"
    assert state(db_session) == before
    # The genuine article, signed now, is accepted: Stripe made the charge it speaks of (whose
    # balance transaction, read before anything is booked, gives Stripe's fee).
    standin.succeed_payment_intent(intent["payment_intent_id"])
    ok = post_webhook(client, *signed(event))
    assert ok.status_code == 200, ok.get_json()
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["status"] == "funded"


def test_a_replayed_event_changes_state_once(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    (event,) = [e for e in standin.events() if e["type"] == "payment_intent.succeeded"]
    after_first = state(db_session)
    for _ in range(3):
        standin.resend_event(event["id"])
    standin.wait_for_webhooks()
    deliveries = [e for e in standin.events() if e["id"] == event["id"]][0]["deliveries"]
    assert [d["status"] for d in deliveries] == [200, 200, 200, 200]
    assert state(db_session) == after_first
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["funded_cents"] == 30800


def test_webhooks_are_refused_when_no_secret_is_configured(client, app):
    app.config["STRIPE_WEBHOOK_SECRET"] = None
    try:
        response = post_webhook(client, *signed({"id": "evt_x", "type": "x", "data": {"object": {}}}))
        assert response.status_code == 503
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET


def test_funding_answers_503_without_stripe_configured(client, app):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    saved = app.config["STRIPE_API_KEY"]
    app.config["STRIPE_API_KEY"] = None
    try:
        response = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key))
        assert response.status_code == 503 and "STRIPE_API_KEY" in response.get_json()["detail"]
    finally:
        app.config["STRIPE_API_KEY"] = saved


def test_cancelling_a_funded_brief_refunds_everything_through_stripe(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    response = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["money"]["refunded_cents"] == 30800 and body["money"]["remaining_cents"] == 0
    refund = db_session.execute(sa.text("SELECT status, amount_cents, stripe_refund_id FROM refunds")).one()
    assert refund.status == "succeeded" and refund.amount_cents == 30800 and refund.stripe_refund_id.startswith("re_")


def test_cancelling_a_live_brief_keeps_what_claimed_work_may_still_cost(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 10, "unit_price_cents": 100}], budget_cents=1100)
    # Two tasks are out with workers: their price and fee must stay in escrow.
    db_session.execute(sa.text(
        "UPDATE tasks SET status = 'claimed' WHERE id IN (SELECT id FROM tasks ORDER BY seq LIMIT 2)"))
    db_session.commit()
    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["money"]["refunded_cents"] == 1100 - 2 * 110
    assert body["money"]["remaining_cents"] == 2 * 110
    statuses = dict(db_session.execute(sa.text("SELECT status, count(*) FROM tasks GROUP BY status")).all())
    assert statuses == {"claimed": 2, "cancelled": 8}
    # The brief says so too, and its task counts still add up to the quantity.
    counts = body["task_groups"][0]["counts"]
    assert (counts["claimed"], counts["cancelled"]) == (2, 8)
    assert sum(n for state, n in counts.items() if state != "rejected") == 10
    read = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert read["task_groups"][0]["counts"] == counts  # the one-statement read agrees


def test_a_refund_stripe_refuses_returns_the_money_to_escrow(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    standin.set_faults(fail_before_commit=1, path_prefix="/v1/refunds")
    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    # A 500 from Stripe is "outcome unknown": the refund stays pending, the money set aside.
    assert body["status"] == "cancelled"
    assert db_session.execute(sa.text("SELECT status FROM refunds")).scalar_one() == "pending"
    assert body["money"]["remaining_cents"] == 0 and body["money"]["refunded_cents"] == 30800
    from marketplace.payments import service

    with client.application.app_context():
        (refund_id,) = service.pending_refund_ids()
        assert service.settle_refund(refund_id) == "succeeded"
    assert db_session.execute(sa.text("SELECT status FROM refunds")).scalar_one() == "succeeded"
    assert standin.balance() >= 0


def test_work_that_ends_unpaid_after_cancelling_is_refunded_by_the_sweep(client, standin, db_session, app):
    from marketplace.jobs import enqueue, queue_name, redis_connection
    from tests.factories import claim, sign_up_worker

    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 10, "unit_price_cents": 100}], budget_cents=1100)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["money"]["remaining_cents"] == 110  # kept for the claimed task

    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '3 minutes'"))
    db_session.commit()
    from rq import Queue, SimpleWorker

    with app.app_context():
        enqueue("workers.claims.expire_claims")
        enqueue("workers.payments.settle_pending_refunds")
        redis = redis_connection()
        SimpleWorker([Queue(queue_name("default"), connection=redis)], connection=redis).work(burst=True)
    task = db_session.execute(sa.text("SELECT status FROM tasks WHERE id = :t"), {"t": held["task"]["id"]}).scalar_one()
    assert task == "cancelled"
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["remaining_cents"] == 0 and money["refunded_cents"] == 1100
    assert db_session.execute(sa.text("SELECT count(*) FROM refunds WHERE status = 'succeeded'")).scalar_one() == 2


def test_the_same_event_delivered_at_once_by_several_connections_funds_once(client, standin, db_session, app):
    import threading

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    event = {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.succeeded", "created": int(time.time()),
             "data": {"object": {"id": intent["payment_intent_id"], "object": "payment_intent", "amount": 30800,
                                 "amount_received": 30800, "currency": "usd",
                                 "metadata": {"payment_id": intent["payment_id"]}}}}
    body, header = signed(event)
    # Stripe made the charge (its own event is delivered too: one more delivery, funded once still).
    standin.succeed_payment_intent(intent["payment_intent_id"])
    barrier, statuses = threading.Barrier(6), []

    def deliver():
        with app.test_client() as c:
            barrier.wait()
            statuses.append(post_webhook(c, body, header).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert db_session.execute(sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'funding'")).scalar_one() == 1
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["funded_cents"] == 30800


def test_cancelling_twice_is_a_conflict_and_refunds_once(client, standin, db_session):
    _, key = sign_up_brand(client)
    draft = create_brief(client, key)
    assert client.post(f"/v1/briefs/{draft['id']}/cancel", headers=auth(key)).get_json()["status"] == "cancelled"
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).status_code == 200
    again = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key))
    assert again.status_code == 409 and again.content_type == "application/problem+json"
    assert db_session.execute(sa.text("SELECT count(*) FROM refunds")).scalar_one() == 1


def test_a_failure_event_arriving_after_the_success_changes_nothing(client, standin, db_session):
    """payment_intent.payment_failed (an earlier declined card) delivered after the intent's success,
    or again later: a failed attempt leaves nothing of ours to change, so the payment stays
    succeeded and the brief funded once. (It used to mark the payment failed, racing the success.)"""
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    standin.succeed_payment_intent(intent["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    failed = {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.payment_failed", "created": int(time.time()),
              "data": {"object": {"id": intent["payment_intent_id"], "object": "payment_intent", "currency": "usd",
                                  "last_payment_error": {"code": "card_declined"},
                                  "metadata": {"payment_id": intent["payment_id"]}}}}
    body, header = signed(failed)
    assert post_webhook(client, body, header).status_code == 200
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT status FROM payments")).scalar_one() == "succeeded"
    brief_now = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert brief_now["status"] == "funded" and brief_now["money"]["funded_cents"] == 30800


def test_the_refund_sweep_reads_escrow_and_what_is_owed_at_one_moment(client, standin, db_session, app, monkeypatch):
    """An approval commits while the sweep of a cancelled brief is between reading the escrow and
    reading what is still owed. Read unlocked, the approved cost left 'owed' but stayed in the
    balance, and was refunded: the work still claimed was left unfunded. The sweep now takes the
    escrow's lock first, so it sees the approval whole or not at all."""
    import threading

    from marketplace.briefs import lifecycle
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger
    from tests.factories import claim, sign_up_worker

    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 10, "unit_price_cents": 100}], budget_cents=1100)
    worker, token = sign_up_worker(client)
    held = [claim(client, token, brief["task_groups"][0]["id"]) for _ in range(3)]
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).status_code == 200
    assert client.post(f"/v1/tasks/{held[0]['task']['id']}/release", headers=auth(token)).status_code == 200
    # Escrow 330 (three claimed tasks at 110), of which 220 is still owed: the sweep should give back 110.

    reached_owed, approved = threading.Event(), threading.Event()
    real_owed = lifecycle.owed_cents

    def owed_after_the_approval(brief_row, now=None):
        reached_owed.set()
        approved.wait(timeout=20)
        return real_owed(brief_row, now)

    monkeypatch.setattr(lifecycle, "owed_cents", owed_after_the_approval)
    swept = []

    def sweep():
        with app.app_context():
            swept.append(lifecycle.refund_released_escrow())
            db.session.remove()

    def sweep_waits_on_a_lock() -> bool:
        with db.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'")).scalar_one() >= 1

    with app.app_context():
        # An approval of the second task, mid-transaction: escrow locked, booked, task approved.
        escrow = ledger.escrow(brief["id"], "usd")
        held_escrow = ledger.locked_balances([escrow])
        ledger.post_many([ledger.Posting("approval", "approval-of-" + held[1]["task"]["id"], (
            (escrow, 110), (ledger.worker_available(worker["id"], "usd"), -100), (ledger.platform_fees("usd"), -10)))],
            locked=held_escrow)
        db.session.execute(sa.text("UPDATE tasks SET status = 'approved' WHERE id = :id"), {"id": held[1]["task"]["id"]})
        thread = threading.Thread(target=sweep)
        thread.start()
        wait_for(lambda: reached_owed.is_set() or sweep_waits_on_a_lock())
        db.session.commit()
        approved.set()
        thread.join(timeout=30)
        db.session.remove()

    assert swept == [1]
    amounts = db_session.execute(sa.text("SELECT amount_cents FROM refunds ORDER BY created_at")).scalars().all()
    assert amounts == [1100 - 330, 110]
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["remaining_cents"] == 110  # the third claimed task is still covered


def test_a_brief_stripe_will_not_charge_for_is_422_and_stays_a_draft_with_no_payment(client, standin, db_session):
    _, key = sign_up_brand(client)
    tiny = create_brief(client, key, budget_cents=100, task_groups=[
        {"kind": "caption", "quantity": 1, "unit_price_cents": 10}])  # 11 cents: under Stripe's 50
    response = client.post(f"/v1/briefs/{tiny['id']}/fund", headers=auth(key))
    assert response.status_code == 422 and response.content_type == "application/problem+json"
    assert "budget_cents" in response.get_json()["errors"] and "Stripe" in response.get_json()["detail"]
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM payments")).scalar_one() == 0
    assert client.get(f"/v1/briefs/{tiny['id']}", headers=auth(key)).get_json()["status"] == "draft"


def test_a_declined_card_leaves_the_same_intent_to_pay_and_it_funds_once(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    first = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    standin.fail_payment_intent(first["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    again = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key))
    assert again.status_code in (200, 201)
    # The brand retries on the intent it holds: a second intent could be paid too.
    assert again.get_json()["payment_intent_id"] == first["payment_intent_id"]
    assert again.get_json()["client_secret"] == first["client_secret"]
    standin.succeed_payment_intent(first["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert money["status"] == "funded" and money["money"]["funded_cents"] == 30800
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM payments")).scalar_one() == 1


def test_a_refund_whose_answer_was_lost_is_looked_up_not_made_again_after_stripe_forgets_the_key(
        client, standin, db_session, app):
    from marketplace.payments import service

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    funded = fund_brief(client, key, brief["id"], standin)
    standin.set_faults(drop_after_commit=1, path_prefix="/v1/refunds")
    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["status"] == "cancelled"
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT status FROM refunds")).scalar_one() == "pending"

    standin.expire_idempotency_keys()  # a day later: the key would no longer stop a second refund
    with app.app_context():
        (refund_id,) = service.pending_refund_ids()
        assert service.settle_refund(refund_id) == "succeeded"
        assert service.settle_refund(refund_id) == "succeeded"  # settled: nothing more happens
    refunds = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url}).v1.refunds.list(
        params={"payment_intent": funded["payment_intent_id"]}).data
    assert [r.amount for r in refunds] == [30800]
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT status FROM refunds")).scalar_one() == "succeeded"
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["refunded_cents"] == 30800 and money["remaining_cents"] == 0


def test_a_brief_paid_twice_is_refunded_from_both_payments(client, standin, db_session, app):
    from marketplace.briefs import lifecycle
    from marketplace.extensions import db
    from marketplace.payments.models import Payment

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    # A second payment for the same brief succeeds (booked as its webhook would book it).
    stripe_client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url})
    second = stripe_client.v1.payment_intents.create(params={"amount": 30800, "currency": "usd"})
    standin.succeed_payment_intent(second.id)
    with app.app_context():
        payment = Payment(brief_id=brief["id"], amount_cents=30800, currency="usd",
                          stripe_payment_intent_id=second.id, status="requires_payment")
        db.session.add(payment)
        db.session.flush()
        lifecycle.record_funding(payment, 30800)
        db.session.commit()
    assert client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]["funded_cents"] == 61600

    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["money"]["refunded_cents"] == 61600 and body["money"]["remaining_cents"] == 0
    db_session.rollback()
    rows = db_session.execute(sa.text("SELECT status, amount_cents FROM refunds ORDER BY created_at")).all()
    assert [tuple(r) for r in rows] == [("succeeded", 30800), ("succeeded", 30800)]


def test_a_brief_whose_window_closed_is_completed_and_what_it_did_not_spend_comes_back(
        client, standin, db_session, app):
    from rq import Queue, SimpleWorker

    from marketplace.jobs import enqueue, queue_name, redis_connection
    from tests.factories import claim, sign_up_worker

    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 10, "unit_price_cents": 100}], budget_cents=1100)
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    db_session.execute(sa.text("UPDATE briefs SET ends_at = now() - interval '1 minute' WHERE id = :id"),
                       {"id": brief["id"]})
    db_session.commit()

    def run_default_queue(*jobs: str) -> None:
        with app.app_context():
            for name in jobs:
                enqueue(name)
            redis = redis_connection()
            SimpleWorker([Queue(queue_name("default"), connection=redis)], connection=redis).work(burst=True)

    run_default_queue("workers.payments.complete_ended_briefs")
    body = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert body["status"] == "completed" and body["closed_at"]
    assert body["money"]["refunded_cents"] == 9 * 110 and body["money"]["remaining_cents"] == 110  # the claimed one
    assert client.post(f"/v1/briefs/{brief['id']}/resume", headers=auth(key)).status_code == 409
    _, late = sign_up_worker(client)
    assert client.post(f"/v1/task-groups/{brief['task_groups'][0]['id']}/claim", headers=auth(late)).status_code == 409

    # The claimed task ends unpaid: it closes rather than reopening, and the rest is refunded.
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '3 minutes'"))
    db_session.commit()
    run_default_queue("workers.claims.expire_claims", "workers.payments.settle_pending_refunds")
    db_session.rollback()
    task = db_session.execute(sa.text("SELECT status FROM tasks WHERE id = :t"), {"t": held["task"]["id"]}).scalar_one()
    assert task == "cancelled"
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["remaining_cents"] == 0 and money["refunded_cents"] == 1100
    run_default_queue("workers.payments.complete_ended_briefs")  # again: nothing more happens
    assert db_session.execute(sa.text("SELECT count(*) FROM refunds")).scalar_one() == 2


def test_a_refund_stripe_refuses_is_not_counted_refunded_and_is_not_tried_again_and_again(
        client, standin, db_session, app):
    """Someone refunded the charge at Stripe by hand, so ours is refused: the money is back in
    escrow (not counted as refunded), and the sweep leaves that brief to a person."""
    from marketplace.briefs import lifecycle

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    funded = fund_brief(client, key, brief["id"], standin)
    stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url}).v1.refunds.create(
        params={"payment_intent": funded["payment_intent_id"]})
    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["money"]["refunded_cents"] == 0 and body["money"]["remaining_cents"] == 30800
    with app.app_context():
        assert lifecycle.refund_released_escrow() == 0
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT string_agg(status, ',') FROM refunds")).scalar_one() == "failed"


def test_a_refund_that_fails_later_at_the_bank_comes_back_to_escrow_once(client, standin, db_session, app):
    from marketplace.briefs import lifecycle

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()["money"]["refunded_cents"] \
        == 30800
    db_session.rollback()
    stripe_refund_id = db_session.execute(sa.text("SELECT stripe_refund_id FROM refunds")).scalar_one()
    standin.fail_refund(stripe_refund_id)
    assert standin.wait_for_webhooks(10)
    for event in standin.events("refund.failed"):
        standin.resend_event(event["id"])
    assert standin.wait_for_webhooks(10)
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["refunded_cents"] == 0 and money["remaining_cents"] == 30800
    db_session.rollback()
    row = db_session.execute(sa.text("SELECT status, failure_reason FROM refunds")).one()
    assert row.status == "failed" and "failed later" in row.failure_reason
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'refund_reversed'")).scalar_one() == 1
    with app.app_context():
        assert lifecycle.refund_released_escrow() == 0  # the same card would fail again: a person's call


def test_funding_again_days_later_hands_back_the_same_intent(client, standin, db_session):
    """Stripe forgets idempotency keys after a day: asking again with the key would make a second
    intent the brand could also pay. The one we recorded is fetched instead."""
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    first = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    standin.fail_payment_intent(first["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    standin.expire_idempotency_keys()
    again = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    assert (again["payment_intent_id"], again["client_secret"]) == (first["payment_intent_id"], first["client_secret"])
    intents = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url}).v1.payment_intents.list().data
    assert len(intents) == 1


def test_money_received_on_another_intent_naming_our_payment_is_booked_and_refunded(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    ours = fund_brief(client, key, brief["id"], standin)
    stray = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url}).v1.payment_intents.create(
        params={"amount": 30800, "currency": "usd", "metadata": {"payment_id": ours["payment_id"]}})
    standin.succeed_payment_intent(stray.id)
    assert standin.wait_for_webhooks(10)
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["funded_cents"] == 61600

    body = client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).get_json()
    assert body["money"]["refunded_cents"] == 61600 and body["money"]["remaining_cents"] == 0
    db_session.rollback()
    refunded = db_session.execute(sa.text(
        "SELECT p.stripe_payment_intent_id, r.status FROM refunds r JOIN payments p ON p.id = r.payment_id "
        "ORDER BY p.stripe_payment_intent_id")).all()
    assert sorted(refunded) == sorted([(ours["payment_intent_id"], "succeeded"), (stray.id, "succeeded")])


def test_completing_briefs_without_stripe_reachable_leaves_their_refunds_pending(
        client, standin, db_session, app, monkeypatch):
    from marketplace.briefs import lifecycle
    from marketplace.payments import service

    _, key = sign_up_brand(client)
    ids = [live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 2, "unit_price_cents": 100}], budget_cents=220)["id"] for _ in range(2)]
    db_session.execute(sa.text("UPDATE briefs SET ends_at = now() - interval '1 minute'"))
    db_session.commit()
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", None)  # misconfigured: every call to Stripe is refused here
    with app.app_context():
        assert sorted(lifecycle.complete_ended_briefs()) == sorted(ids)  # every one, not just the first
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT string_agg(status, ',') FROM refunds")).scalar_one() == "pending,pending"
    monkeypatch.undo()
    with app.app_context():
        assert [service.settle_refund(r) for r in service.pending_refund_ids()] == ["succeeded", "succeeded"]


def test_two_requests_replacing_a_canceled_intent_make_one_new_intent(client, standin, db_session, app):
    import threading

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    first = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    stripe_client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url})
    stripe_client.v1.payment_intents.cancel(first["payment_intent_id"])
    barrier, answers = threading.Barrier(4), []

    def fund():
        with app.test_client() as c:
            barrier.wait()
            answers.append(c.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json())

    threads = [threading.Thread(target=fund) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len({a["payment_intent_id"] for a in answers}) == 1 and answers[0]["payment_intent_id"] != \
        first["payment_intent_id"]
    payable = [pi for pi in stripe_client.v1.payment_intents.list().data if pi.status != "canceled"]
    assert len(payable) == 1
    db_session.rollback()
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM payments WHERE status IN ('created', 'requires_payment')")).scalar_one() == 1


def _at_once(app, *calls) -> list:
    """Run each call in a thread of its own, started together; their results (or exceptions) in order."""
    import threading

    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # returned for the test to look at
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_a_double_click_on_fund_makes_one_payment_and_one_intent(client, standin, db_session, app):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)

    def fund():
        with app.test_client() as c:
            return c.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()

    first, second = _at_once(app, fund, fund)
    assert first["payment_intent_id"] == second["payment_intent_id"] and first["payment_id"] == second["payment_id"]
    assert len(stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url}).v1.payment_intents.list().data) == 1
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM payments")).scalar_one() == 1


def test_the_brand_cancelling_as_the_window_closes_refunds_once(client, standin, db_session, app):
    """The completion job and the brand's cancel reach the same ended brief at once: one of them
    closes it, the other is a no-op (the job) or a 409 (the cancel); one refund of the escrow."""
    from marketplace.briefs import lifecycle
    from marketplace.extensions import db

    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 10, "unit_price_cents": 100}], budget_cents=1100)
    db_session.execute(sa.text("UPDATE briefs SET ends_at = now() - interval '1 minute'"))
    db_session.commit()

    def complete():
        with app.app_context():
            try:
                return lifecycle.complete_ended_briefs()
            finally:
                db.session.remove()

    def cancel():
        with app.test_client() as c:
            return c.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).status_code

    completed, cancelled = _at_once(app, complete, cancel)
    body = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert (completed, cancelled, body["status"]) in (([brief["id"]], 409, "completed"), ([], 200, "cancelled"))
    assert body["money"]["refunded_cents"] == 1100 and body["money"]["remaining_cents"] == 0
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM refunds")).scalar_one() == 1
