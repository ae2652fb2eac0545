"""Payout batches while the brands' card money is still pending at Stripe: items held with the date
their funds become available, resumed once Stripe's balance has them, each paid exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.factories import make_admin, rfc3339, wait_for
from tests.factories.payouts import approved_work, earnings, ready_worker, run_payout_jobs
from tests.test_payouts import get_batch, resume_held, run_batch_now, start_batch, stripe_client


def charge_transactions() -> list:
    return list(stripe_client().v1.balance_transactions.list(params={"type": "charge", "limit": 100}).data)


def funded_workers(app, client, standin, count: int = 2, price_cents: int = 400) -> list[tuple[dict, str, str]]:
    """Workers with approved work on a brief paid a moment ago: its money is pending at Stripe."""
    workers = [ready_worker(client, standin) for _ in range(count)]
    approved_work(app, client, standin, [(w["id"], t) for w, t, _ in workers], price_cents, funds_available=False)
    totals = standin.balance_totals()
    assert totals["available"] == 0 and totals["pending"] > 0
    return workers


def test_batch_right_after_funding_holds_items_until_their_funds_are_available(app, client, runner, standin):
    admin = make_admin(runner)
    workers = funded_workers(app, client, standin)
    [charge] = charge_transactions()

    batch = start_batch(client, admin)
    run_payout_jobs(app)

    held = get_batch(client, admin, batch["id"])
    assert held["status"] == "processing" and held["progress"] == {"done": 0, "total": 2}
    assert held["totals"]["held_cents"] == 800
    assert held["totals"]["failed_cents"] == held["totals"]["paid_cents"] == held["totals"]["pending_cents"] == 0
    when = rfc3339(datetime.fromtimestamp(charge.available_on, UTC))
    assert [(i["status"], i["available_on"], i["failure_reason"]) for i in held["items"]] == [("held", when, None)] * 2
    # Nothing was spent that Stripe does not have, and the workers' money waits in transit.
    assert standin.transfer_counts()["total"] == 0
    assert standin.balance_totals()["available"] == 0
    assert all((earnings(client, t)["available_cents"], earnings(client, t)["in_transit_cents"]) == (0, 400)
               for _, t, _ in workers)

    # Our clock has not moved, Stripe's has: the sweep asks Stripe's balance, not our clock.
    assert resume_held(app) == []
    standin.advance_time(days=1)
    assert resume_held(app) == []  # still pending
    standin.advance_time(days=1)
    assert resume_held(app) == [batch["id"]]
    run_payout_jobs(app)

    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed" and done["progress"] == {"done": 2, "total": 2}
    assert done["totals"]["paid_cents"] == 800 and done["totals"]["held_cents"] == 0
    assert all(i["status"] == "paid" and i["available_on"] is None for i in done["items"])
    # The first try never reached Stripe (the balance said it could not pay): the resumed one is try 2.
    assert standin.transfer_counts() == {"counts": {f"{i['id']}:attempt-2": 1 for i in done["items"]}, "total": 2}
    assert all(earnings(client, t)["paid_cents"] == 400 for _, t, _ in workers)

    assert resume_held(app) == []
    run_batch_now(app, batch["id"])
    assert standin.transfer_counts()["total"] == 2


def test_pays_what_is_available_and_holds_the_rest(app, client, runner, standin):
    admin = make_admin(runner)
    workers = funded_workers(app, client, standin, count=3)
    standin.set_balance(900)  # some money of the platform's own: two items' worth, not three

    batch = start_batch(client, admin)
    run_payout_jobs(app)
    state = get_batch(client, admin, batch["id"])
    assert sorted(i["status"] for i in state["items"]) == ["held", "paid", "paid"]
    assert state["status"] == "processing" and state["progress"] == {"done": 2, "total": 3}
    assert standin.balance() == 100 and state["totals"]["held_cents"] == 400

    standin.make_funds_available()
    assert resume_held(app) == [batch["id"]]
    run_payout_jobs(app)
    assert get_batch(client, admin, batch["id"])["status"] == "completed"
    assert standin.transfer_counts()["total"] == 3
    assert all(earnings(client, t)["paid_cents"] == 400 for _, t, _ in workers)


def test_a_held_item_refused_by_stripe_is_resent_under_a_new_key(app, client, runner, standin, monkeypatch):
    from marketplace.payments import gateway

    admin = make_admin(runner)
    funded_workers(app, client, standin, count=1)
    batch = start_batch(client, admin)

    # Our balance read fails, so the item is tried and Stripe refuses it (balance_insufficient).
    def unreadable():
        raise gateway.OutcomeUnknown("balance unreadable")

    monkeypatch.setattr(gateway, "platform_balance", unreadable)
    run_batch_now(app, batch["id"])
    monkeypatch.undo()
    [item] = get_batch(client, admin, batch["id"])["items"]
    assert item["status"] == "held" and item["available_on"] is not None

    standin.make_funds_available()
    # As Stripe does, the stand-in replays the saved refusal for the first key, funds or no funds.
    with pytest.raises(gateway.StripeError) as refused:
        stripe_client().v1.transfers.create(params={
            "amount": item["amount_cents"], "currency": "usd", "destination": item["stripe_account_id"],
            "transfer_group": batch["id"], "metadata": {"payout_item_id": item["id"], "worker_id": item["worker_id"]},
        }, options={"idempotency_key": item["id"]})
    assert refused.value.code == "balance_insufficient"

    assert resume_held(app) == [batch["id"]]
    run_payout_jobs(app)
    [paid] = get_batch(client, admin, batch["id"])["items"]
    assert paid["status"] == "paid"
    assert standin.transfer_counts() == {"counts": {f"{item['id']}:attempt-2": 1}, "total": 1}


def test_a_crash_after_a_held_item_is_claimed_resends_it_once_under_the_saved_key(app, client, runner, standin):
    from marketplace.extensions import db
    from marketplace.payouts import service

    admin = make_admin(runner)
    funded_workers(app, client, standin, count=2)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    standin.make_funds_available()

    # A run claims the held items (their next try saved) and dies before asking Stripe…
    with app.app_context():
        claimed = service._claim_held(batch["id"], service.CLAIM_GROUP, service._Funds("usd"))
        db.session.remove()
    assert [c["transfer_attempt"] for c in claimed] == [2, 2]
    # …and the next dies after Stripe made the first transfer, before its answer arrived.
    standin.set_faults(drop_after_commit=1, path_prefix="/v1/transfers")
    run_batch_now(app, batch["id"], unknown_retries=0)
    standin.clear_faults()
    assert standin.transfer_counts()["total"] == 2

    # Stalled: the sweep's run looks transfers up before resending anything.
    run_batch_now(app, batch["id"])
    done = get_batch(client, admin, batch["id"])
    assert done["status"] == "completed" and all(i["status"] == "paid" for i in done["items"])
    assert standin.transfer_counts() == {"counts": {f"{i['id']}:attempt-2": 1 for i in done["items"]}, "total": 2}


def test_two_runs_resuming_one_held_batch_at_once_pay_each_item_once(app, client, runner, standin):
    admin = make_admin(runner)
    funded_workers(app, client, standin, count=4, price_cents=300)
    batch = start_batch(client, admin)
    run_payout_jobs(app)
    assert get_batch(client, admin, batch["id"])["totals"]["held_cents"] == 1200
    standin.make_funds_available()

    start = threading.Barrier(2)

    def run():
        start.wait(timeout=10)
        run_batch_now(app, batch["id"])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    wait_for(lambda: get_batch(client, admin, batch["id"])["status"] == "completed")
    counts = standin.transfer_counts()
    assert counts["total"] == 4 and set(counts["counts"].values()) == {1}
