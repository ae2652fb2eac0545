"""Payout accounts, payout batches (one Stripe transfer per worker), webhooks, earnings and the CLI."""

from __future__ import annotations

import os

import sqlalchemy as sa
import stripe

from tests.factories import auth, make_admin, sign_up_brand, sign_up_worker, wait_for
from tests.factories.payouts import (
    approved_work,
    earnings,
    follow_onboarding_link,
    payout_account,
    ready_worker,
    run_payout_jobs,
)


def stripe_client() -> stripe.StripeClient:
    return stripe.StripeClient(os.environ["STRIPE_API_KEY"], base_addresses={"api": os.environ["STRIPE_API_BASE"]},
                               max_network_retries=0)


def start_batch(client, admin_key: str, **body) -> dict:
    response = client.post("/v1/payout-batches", json={"currency": "usd", **body}, headers=auth(admin_key))
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def get_batch(client, admin_key: str, batch_id: str) -> dict:
    response = client.get(f"/v1/payout-batches/{batch_id}", headers=auth(admin_key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def run_batch_now(app, batch_id: str, **options) -> dict:
    """The payout job's work for one batch, run in this process (not through the queue)."""
    from marketplace.extensions import db
    from marketplace.payouts.service import process_batch

    with app.app_context():
        try:
            return process_batch(batch_id, **options)
        finally:
            db.session.remove()


def resume_held(app) -> list[str]:
    """The periodic job that resumes held items (workers.payouts.resume_held_batches), run here."""
    from workers.payouts import resume_held_batches

    with app.app_context():
        return resume_held_batches()


def transfers_in(batch_id: str) -> list:
    return list(stripe_client().v1.transfers.list(params={"transfer_group": batch_id, "limit": 100}).data)


# Payout accounts ----------------------------------------------------------------------------------


def test_payout_account_is_made_once_and_onboarding_enables_it(client, standin):
    _, token = sign_up_worker(client)
    assert client.get("/v1/me/payout-account", headers=auth(token)).status_code == 404

    first = client.post("/v1/me/payout-account", headers=auth(token))
    assert first.status_code == 201, first.get_json()
    second = client.post("/v1/me/payout-account", headers=auth(token))
    assert second.status_code == 200
    made, again = first.get_json(), second.get_json()
    assert made["account_id"] == again["account_id"] and made["account_id"].startswith("acct_")
    assert made["onboarding_url"] != again["onboarding_url"]  # a fresh link each call
    assert made["payouts_enabled"] is False

    account = stripe_client().v1.accounts.retrieve(made["account_id"])
    assert account.type == "express" and "transfers" in account.capabilities
    assert account.metadata["worker_id"].startswith("wrk_")
    assert len(stripe_client().v1.accounts.list(params={"limit": 100}).data) == 1

    assert follow_onboarding_link(again["onboarding_url"]) in (200, 303)
    state = wait_for(lambda: (body := client.get("/v1/me/payout-account", headers=auth(token)).get_json())
                     ["payouts_enabled"] and body)
    assert state["transfers_active"] is True and state["details_submitted"] is True


def test_payout_account_is_for_workers_only(client, runner, standin):
    _, brand_key = sign_up_brand(client)
    assert client.post("/v1/me/payout-account", headers=auth(brand_key)).status_code == 403
    assert client.post("/v1/me/payout-account").status_code == 401
    assert client.get("/v1/me/earnings", headers=auth(make_admin(runner))).status_code == 403


def test_account_updated_replayed_three_times_changes_state_once(client, standin):
    _, token, account_id = ready_worker(client, standin)
    ready_event = [e for e in standin.events("account.updated") if e["object_id"] == account_id][-1]
    standin.set_account_ready(account_id, False)
    wait_for(lambda: not client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"])
    for _ in range(3):
        standin.resend_event(ready_event["id"])
    assert standin.wait_for_webhooks(10)
    deliveries = [e for e in standin.events() if e["id"] == ready_event["id"]][0]["deliveries"]
    assert [d["status"] for d in deliveries] == [200] * 4
    # The replays of the older "ready" event were recognised and did not turn payouts back on.
    assert client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"] is False


# Batches ------------------------------------------------------------------------------------------


def test_batch_pays_each_worker_once_and_earnings_show_it_paid(app, client, runner, standin):
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(3)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 250)
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers[:1]], 100)
    expected = {workers[0][2]: 350, workers[1][2]: 250, workers[2][2]: 250}
    assert earnings(client, workers[0][1])["available_cents"] == 350
    platform_before = standin.balance()

    batch = start_batch(client, admin, min_amount_cents=100)
    assert batch["status"] == "pending" and batch["progress"] == {"done": 0, "total": 3}
    assert earnings(client, workers[0][1])["in_transit_cents"] == 350  # reserved at once
    run_payout_jobs(app)

    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed" and done["progress"] == {"done": 3, "total": 3}
    assert done["totals"]["paid_cents"] == 850 and done["totals"]["failed_cents"] == 0
    assert {i["stripe_account_id"]: i["amount_cents"] for i in done["items"]} == expected
    assert all(i["status"] == "paid" and i["stripe_transfer_id"].startswith("tr_") for i in done["items"])

    counts = standin.transfer_counts()
    assert counts["total"] == 3 and counts["counts"] == {i["id"]: 1 for i in done["items"]}
    transfers = transfers_in(batch["id"])
    assert {t.destination: t.amount for t in transfers} == expected
    assert {t.metadata["payout_item_id"] for t in transfers} == {i["id"] for i in done["items"]}
    assert standin.balance() == platform_before - 850

    for (_, token, account_id) in workers:
        mine = earnings(client, token)
        assert (mine["available_cents"], mine["in_transit_cents"], mine["paid_cents"]) == (0, 0, expected[account_id])

    listed = client.get("/v1/payout-batches", headers=auth(admin)).get_json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]] and listed["next_cursor"] is None
    assert listed["data"][0]["progress"] == {"done": 3, "total": 3}


def test_minimum_and_accounts_not_ready_are_left_out(app, client, runner, standin):
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
    done = get_batch(client, admin, batch["id"])
    assert [i["worker_id"] for i in done["items"]] == [paid["id"]]
    assert done["status"] == "completed"
    assert earnings(client, paid_token)["paid_cents"] == 500
    assert earnings(client, small_token)["available_cents"] == 99
    assert earnings(client, not_onboarded_token)["available_cents"] == 500
    assert earnings(client, no_account_token)["available_cents"] == 500


def test_batch_with_nobody_to_pay_completes_at_once(client, runner, standin):
    admin = make_admin(runner)
    batch = start_batch(client, admin)
    assert batch["status"] == "completed" and batch["progress"] == {"done": 0, "total": 0}
    assert batch["totals"]["amount_cents"] == 0 and batch["finished_at"]
    assert standin.transfer_counts()["total"] == 0


def test_account_not_ready_at_stripe_fails_the_item_and_returns_the_money(app, client, runner, standin):
    admin = make_admin(runner)
    good, good_token, _ = ready_worker(client, standin)
    bad, bad_token, bad_account = ready_worker(client, standin)
    approved_work(app, client, standin, [(good["id"], good_token), (bad["id"], bad_token)], 300)

    batch = start_batch(client, admin)
    standin.set_account_ready(bad_account, False)  # between the snapshot and the transfer
    run_payout_jobs(app)

    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed_with_failures" and done["progress"] == {"done": 2, "total": 2}
    items = {i["worker_id"]: i for i in done["items"]}
    assert items[good["id"]]["status"] == "paid"
    assert items[bad["id"]]["status"] == "failed" and items[bad["id"]]["stripe_transfer_id"] is None
    assert "insufficient_capabilities_for_transfer" in items[bad["id"]]["failure_reason"]
    assert done["totals"]["failed_cents"] == 300 and done["totals"]["paid_cents"] == 300
    assert earnings(client, bad_token)["available_cents"] == 300
    assert earnings(client, bad_token)["in_transit_cents"] == 0
    assert standin.transfer_counts()["total"] == 1


def test_balance_insufficient_holds_items_and_the_held_sweep_pays_them_once_funds_arrive(app, client, runner, standin):
    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(2)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 400)
    standin.set_balance(0)

    first = start_batch(client, admin)
    run_payout_jobs(app)
    held = get_batch(client, admin, first["id"])
    # Nothing pending at Stripe covers them: held, saying so with no date, not failed.
    assert held["status"] == "processing" and held["progress"] == {"done": 0, "total": 2}
    assert held["totals"]["held_cents"] == 800 and held["totals"]["failed_cents"] == 0
    assert all(i["status"] == "held" and i["available_on"] is None for i in held["items"])
    assert all(earnings(client, t)["in_transit_cents"] == 400 for _, t, _ in workers)
    assert resume_held(app) == []  # nothing available: no run, no transfer
    assert standin.transfer_counts()["total"] == 0

    standin.set_balance(10_000)
    assert resume_held(app) == [first["id"]]
    run_payout_jobs(app)
    assert get_batch(client, admin, first["id"])["status"] == "completed"
    assert all(earnings(client, t)["paid_cents"] == 400 for _, t, _ in workers)
    assert standin.balance() == 10_000 - 800
    assert resume_held(app) == [] and standin.transfer_counts()["total"] == 2


def test_transfer_reversed_webhook_replayed_three_times_returns_the_money_once(app, client, runner, standin):
    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    item = get_batch(client, admin, batch["id"])["items"][0]

    stripe_client().v1.transfers.reversals.create(item["stripe_transfer_id"], params={"amount": 100})
    assert standin.wait_for_webhooks(10)
    event = standin.events("transfer.reversed")[-1]
    for _ in range(3):
        standin.resend_event(event["id"])
    assert standin.wait_for_webhooks(10)
    mine = earnings(client, token)
    assert (mine["available_cents"], mine["paid_cents"]) == (100, 200)
    after_partial = get_batch(client, admin, batch["id"])
    reversed_item = after_partial["items"][0]
    assert reversed_item["status"] == "reversed" and "100 of 300" in reversed_item["failure_reason"]
    assert reversed_item["reversed_cents"] == 100
    # The batch's totals agree with the worker's earnings: 200 stayed paid, 100 came back.
    assert (after_partial["totals"]["paid_cents"], after_partial["totals"]["reversed_cents"]) == (200, 100)

    # The rest comes back too, and an old event delivered again changes nothing.
    stripe_client().v1.transfers.reversals.create(item["stripe_transfer_id"])
    assert standin.wait_for_webhooks(10)
    standin.resend_event(event["id"])
    assert standin.wait_for_webhooks(10)
    mine = earnings(client, token)
    assert (mine["available_cents"], mine["paid_cents"]) == (300, 0)
    after_whole = get_batch(client, admin, batch["id"])
    assert (after_whole["totals"]["paid_cents"], after_whole["totals"]["reversed_cents"]) == (0, 300)
    assert after_whole["items"][0]["reversed_cents"] == 300


def test_a_reversal_reported_before_the_transfer_was_recorded_books_both_once(app, client, runner, standin):

    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 250)
    batch = start_batch(client, admin)
    standin.set_faults(drop_after_commit=1, path_prefix="/v1/transfers")
    run_batch_now(app, batch["id"], unknown_retries=0)  # Stripe's answer lost: the item stays `sending`
    item = get_batch(client, admin, batch["id"])["items"][0]
    assert (item["status"], item["transfer_requested"]) == ("pending", True)

    transfer, = transfers_in(batch["id"])
    stripe_client().v1.transfers.reversals.create(transfer.id)
    assert standin.wait_for_webhooks(10)
    item = get_batch(client, admin, batch["id"])["items"][0]
    assert (item["status"], item["stripe_transfer_id"], item["reversed_cents"]) == ("reversed", transfer.id, 250)

    run_batch_now(app, batch["id"])  # the rerun finds the item settled and sends nothing
    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed" and done["totals"]["reversed_cents"] == 250
    assert standin.transfer_counts()["total"] == 1
    mine = earnings(client, token)
    assert (mine["available_cents"], mine["in_transit_cents"], mine["paid_cents"]) == (250, 0, 0)


def test_a_transfer_at_stripe_that_differs_from_its_item_is_left_for_a_person(app, client, runner, standin):
    from marketplace.extensions import db

    admin = make_admin(runner)
    worker, token, account_id = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 250)
    batch = start_batch(client, admin)
    item_id = get_batch(client, admin, batch["id"])["items"][0]["id"]
    with app.app_context():  # a runner died between marking the item and hearing Stripe's answer
        db.session.execute(sa.text("UPDATE payout_items SET status = 'sending', attempts = 1 WHERE id = :id"),
                           {"id": item_id})
        db.session.commit()
    # …and Stripe holds a transfer for it, but not the one we asked for.
    stripe_client().v1.transfers.create(params={
        "amount": 999, "currency": "usd", "destination": account_id, "transfer_group": batch["id"],
        "metadata": {"payout_item_id": item_id}})

    run_batch_now(app, batch["id"], unknown_retries=0)
    body = get_batch(client, admin, batch["id"])
    item = body["items"][0]
    assert body["status"] == "processing" and item["stripe_transfer_id"] is None
    assert (item["status"], item["transfer_requested"]) == ("pending", True)
    assert "999 cents" in item["failure_reason"] and "for a person" in item["failure_reason"]
    assert len(transfers_in(batch["id"])) == 1  # nothing sent again
    mine = earnings(client, token)
    assert (mine["in_transit_cents"], mine["paid_cents"]) == (250, 0)

    # Its reversal is not booked against our item either: that transfer was never our 250.
    stripe_client().v1.transfers.reversals.create(transfers_in(batch["id"])[0].id)
    assert standin.wait_for_webhooks(10)
    item = get_batch(client, admin, batch["id"])["items"][0]
    assert (item["status"], item["transfer_requested"]) == ("pending", True)
    mine = earnings(client, token)
    assert (mine["available_cents"], mine["in_transit_cents"], mine["paid_cents"]) == (0, 250, 0)


def test_payout_failed_disables_payouts_and_reverses_the_named_item(app, client, runner, standin):
    admin = make_admin(runner)
    worker, token, account_id = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    item = get_batch(client, admin, batch["id"])["items"][0]

    # A bank payout nobody can tie to an item: the money stays in the worker's Stripe balance.
    standin.emit_event("payout.failed", {"amount": 300, "currency": "usd", "status": "failed",
                                         "failure_code": "account_closed"}, account=account_id)
    assert standin.wait_for_webhooks(10)
    assert client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"] is False
    assert earnings(client, token)["paid_cents"] == 300

    # One that names our item: its transfer is reversed and the money returns to available, once.
    failed = standin.emit_event("payout.failed", {
        "amount": 300, "currency": "usd", "status": "failed", "failure_code": "account_closed",
        "metadata": {"payout_item_id": item["id"]}}, account=account_id)
    assert standin.wait_for_webhooks(10)
    standin.resend_event(failed["id"])
    assert standin.wait_for_webhooks(10)
    run_payout_jobs(app)
    assert standin.wait_for_webhooks(10)
    mine = wait_for(lambda: (e := earnings(client, token))["available_cents"] == 300 and e)
    assert mine["paid_cents"] == 0
    assert get_batch(client, admin, batch["id"])["items"][0]["status"] == "reversed"
    assert len(stripe_client().v1.transfers.reversals.list(item["stripe_transfer_id"]).data) == 1

    # Not eligible again until Stripe says payouts work.
    assert start_batch(client, admin)["progress"]["total"] == 0


def test_resume_stalled_batches_finishes_a_batch_nobody_ran(app, client, runner, standin):
    from workers.payouts import resume_stalled_batches

    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    batch = start_batch(client, admin)
    with app.app_context():
        from marketplace.extensions import db
        from marketplace.jobs import redis_connection

        redis_connection(app).flushdb()  # the job was lost
        assert resume_stalled_batches() == []  # too recent to call stalled
        db.session.execute(sa.text("UPDATE payout_items SET created_at = now() - interval '10 minutes'"))
        db.session.commit()
        assert resume_stalled_batches() == [batch["id"]]
    run_payout_jobs(app)
    assert get_batch(client, admin, batch["id"])["status"] == "completed"
    assert earnings(client, token)["paid_cents"] == 300


def test_a_batch_whose_runner_died_after_its_last_outcome_is_finished_by_the_resume(app, client, runner, standin):
    """Every item settled, but the runner died before marking the batch finished: the periodic
    resume must pick it up although no item is pending or sending any more, and its run must
    not be refused by the lock the first run (in this same process) took on the batch."""
    from workers.payouts import resume_stalled_batches

    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    with app.app_context():
        from marketplace.extensions import db

        db.session.execute(sa.text(
            "UPDATE payout_batches SET status = 'processing', finished_at = NULL, "
            "created_at = now() - interval '10 minutes'"))
        db.session.commit()
        assert resume_stalled_batches() == [batch["id"]]
    run_payout_jobs(app)
    assert get_batch(client, admin, batch["id"])["status"] == "completed"
    assert earnings(client, token)["paid_cents"] == 300  # finished, not paid again


# Earnings -----------------------------------------------------------------------------------------


def test_earnings_show_work_awaiting_review_apart_from_money(app, client, standin):
    worker, token = sign_up_worker(client)
    assert earnings(client, token) == {"currency": "usd", "pending_review_cents": 0, "available_cents": 0,
                                       "in_transit_cents": 0, "paid_cents": 0, "bonus_cents": 0}
    approved_work(app, client, standin, [(worker["id"], token)], 120, status="needs_review")
    approved_work(app, client, standin, [(worker["id"], token)], 80)
    mine = earnings(client, token)
    assert (mine["pending_review_cents"], mine["available_cents"], mine["paid_cents"]) == (120, 80, 0)


# Bad input ----------------------------------------------------------------------------------------


def test_a_batch_without_stripe_configured_is_503_and_reserves_nothing(app, client, runner, standin, monkeypatch):
    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 300)
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", None)
    response = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin))
    assert response.status_code == 503 and "STRIPE_API_KEY" in response.get_json()["detail"]
    assert client.get("/v1/payout-batches", headers=auth(admin)).get_json()["data"] == []
    assert earnings(client, token)["available_cents"] == 300


def test_bad_batch_requests_are_refused_and_change_nothing(app, client, runner, standin):
    admin = make_admin(runner)
    _, brand_key = sign_up_brand(client)
    _, worker_token = sign_up_worker(client)
    assert client.post("/v1/payout-batches", json={"currency": "usd"}).status_code == 401
    for key in (brand_key, worker_token):
        assert client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(key)).status_code == 403
        assert client.get("/v1/payout-batches", headers=auth(key)).status_code == 403
    for body, field in [({"currency": "USD"}, "currency"), ({"currency": "dollars"}, "currency"),
                        ({"currency": "zzz"}, "currency"),
                        ({"currency": 5}, "currency"), ({"min_amount_cents": -1}, "min_amount_cents"),
                        ({"min_amount_cents": "100"}, "min_amount_cents"),
                        ({"min_amount_cents": 1.5}, "min_amount_cents"), ({"surprise": 1}, "surprise")]:
        response = client.post("/v1/payout-batches", json=body, headers=auth(admin))
        assert response.status_code == 422, (body, response.get_json())
        assert response.content_type.startswith("application/problem+json")
        assert field in response.get_json()["errors"]
    missing = client.get("/v1/payout-batches/pb_nope", headers=auth(admin))
    assert missing.status_code == 404 and missing.content_type.startswith("application/problem+json")
    assert client.get("/v1/payout-batches?limit=0", headers=auth(admin)).status_code == 422
    assert client.get("/v1/payout-batches?cursor=zzz", headers=auth(admin)).status_code == 422
    assert client.get("/v1/payout-batches", headers=auth(admin)).get_json()["data"] == []


# The operator command -----------------------------------------------------------------------------


def test_flask_payouts_run_and_status(app, client, runner, standin):
    workers = [ready_worker(client, standin) for _ in range(2)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 300)

    result = runner.invoke(args=["payouts", "run", "--min-amount-cents", "100"])
    assert result.exit_code == 0, result.output
    batch_id = result.output.split()[1]
    assert "completed, 2/2 done; paid 600" in result.output
    assert standin.transfer_counts()["total"] == 2

    status = runner.invoke(args=["payouts", "status", batch_id])
    assert status.exit_code == 0 and "completed, 2/2 done" in status.output

    assert runner.invoke(args=["payouts", "status", "pb_nope"]).exit_code != 0
    bad_currency = runner.invoke(args=["payouts", "run", "--currency", "dollars"])
    assert bad_currency.exit_code != 0 and "lower-case ISO 4217" in bad_currency.output
    assert runner.invoke(args=["payouts", "run", "--min-amount-cents", "-5"]).exit_code != 0
    empty = runner.invoke(args=["payouts", "run"])
    assert empty.exit_code == 0 and "completed, 0/0 done" in empty.output
