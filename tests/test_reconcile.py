"""`flask payments reconcile`: our cash at Stripe against Stripe's balance and balance transactions."""

from __future__ import annotations

from tests.factories import auth, create_brief, fund_brief, make_admin, sign_up_brand, wait_for
from tests.factories.payouts import approved_work, earnings, ready_worker, run_payout_jobs
from tests.test_payouts import get_batch, resume_held, start_batch, stripe_client

NONE = "No differences"


def reconcile(runner):
    result = runner.invoke(args=["payments", "reconcile"])
    return result.exit_code, result.output


def assert_clean(runner) -> None:
    from marketplace.reconcile import NO_DIFFERENCES

    code, output = reconcile(runner)
    assert (code, output.strip()) == (0, NO_DIFFERENCES), output


def test_reconcile_finds_no_differences_after_funding_approval_held_payout_reversal_and_refund(
        app, client, runner, standin):
    assert_clean(runner)  # nothing at all yet

    admin = make_admin(runner)
    workers = [ready_worker(client, standin) for _ in range(2)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 400, funds_available=False)
    assert_clean(runner)  # funded, the money pending at Stripe less its fee

    batch = start_batch(client, admin)
    run_payout_jobs(app)  # held: the money is pending
    assert_clean(runner)
    standin.make_funds_available()
    assert resume_held(app) == [batch["id"]]
    run_payout_jobs(app)
    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed"

    # A partial reversal, booked by its webhook.
    item = done["items"][0]
    stripe_client().v1.transfers.reversals.create(item["stripe_transfer_id"], params={"amount": 150})
    assert standin.wait_for_webhooks(10)
    wait_for(lambda: any(earnings(client, t)["available_cents"] == 150 for _, t, _ in workers))

    # A brief funded and cancelled: refunded whole, and Stripe keeps its fee.
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=auth(key)).status_code == 200

    assert_clean(runner)


def test_reconcile_prints_an_adjustment_we_do_not_know_and_the_balance_it_moves(app, client, runner, standin):
    workers = [ready_worker(client, standin)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], 400)
    assert_clean(runner)
    before = standin.balance()
    standin.set_balance(before + 1234)  # money that no charge of ours brought in

    code, output = reconcile(runner)
    assert code == 1
    lines = output.strip().splitlines()
    assert any(line.startswith("balance usd:") and "difference -1234" in line for line in lines), output
    assert any("adjustment" in line and "1234" in line and "not in our books" in line for line in lines), output
    assert lines[-1] == "2 differences." and NONE not in output


def test_reconcile_prints_a_fee_that_differs_from_the_one_booked(app, client, runner, standin):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)
    [txn] = stripe_client().v1.balance_transactions.list(params={"type": "charge"}).data
    # Stripe's fee as it would be with another pricing than the one we booked from.
    with standin.engine.lock:
        stored = standin.engine.stores["balance_transaction"][txn.id]
        stored["fee"] += 7
        stored["net"] -= 7

    code, output = reconcile(runner)
    assert code == 1
    assert f"we booked a fee of {txn.fee}" in output and f"fee {txn.fee + 7}" in output
    assert "difference 7" in output  # our cash at Stripe is now 7 more than Stripe's balance


def test_reconcile_without_stripe_configured_says_so(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", None)
    result = runner.invoke(args=["payments", "reconcile"])
    assert result.exit_code != 0 and "STRIPE_API_KEY" in result.output
