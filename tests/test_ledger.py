"""The ledger: balanced entries only, nothing below zero, one booking per event, bulk posting."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from marketplace.ledger import service as ledger
from tests.factories import row_locked


def fund(brief_id: str, amount: int, ref: str):
    # "seed", not "funding": the invariant check ties every funding entry to a real payment.
    ledger.post("seed", ref, [(ledger.stripe_clearing("usd"), amount), (ledger.escrow(brief_id, "usd"), -amount)])


def test_unbalanced_entries_are_refused(db_session):
    with pytest.raises(ledger.UnbalancedEntry):
        ledger.post("seed", "x", [(ledger.stripe_clearing("usd"), 100), (ledger.escrow("b", "usd"), -99)])
    with pytest.raises(ledger.UnbalancedEntry):
        ledger.post("seed", "x", [])
    assert db_session.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == 0


def test_balances_are_sums_and_nothing_goes_below_zero(db_session):
    fund("b1", 1000, "pay_1")
    db_session.commit()
    assert ledger.balance(ledger.escrow("b1", "usd")) == 1000
    assert ledger.balance(ledger.stripe_clearing("usd")) == 1000
    with pytest.raises(ledger.InsufficientFunds):
        ledger.post("approval", "sub_1", [(ledger.escrow("b1", "usd"), 1001), (ledger.worker_available("w", "usd"), -1001)])
    db_session.rollback()
    ledger.post("approval", "sub_1", [(ledger.escrow("b1", "usd"), 1000), (ledger.worker_available("w", "usd"), -1000)])
    db_session.commit()
    assert ledger.balance(ledger.escrow("b1", "usd")) == 0
    assert ledger.balance(ledger.worker_available("w", "usd")) == 1000


def test_the_same_event_cannot_be_booked_twice(db_session):
    fund("b1", 500, "pay_1")
    db_session.commit()
    with pytest.raises(ledger.AlreadyPosted):
        fund("b1", 500, "pay_1")
    db_session.rollback()
    assert ledger.balance(ledger.escrow("b1", "usd")) == 500


def test_post_many_books_in_bulk_and_refuses_overdrafts_whole(db_session):
    fund("b1", 10_000, "pay_1")
    db_session.commit()
    postings = [ledger.Posting("approval", f"sub_{i}", ((ledger.escrow("b1", "usd"), 66),
                (ledger.worker_available(f"w{i % 7}", "usd"), -60), (ledger.platform_fees("usd"), -6)))
                for i in range(150)]
    assert ledger.post_many(postings) == 150
    db_session.commit()
    assert ledger.balance(ledger.escrow("b1", "usd")) == 10_000 - 150 * 66
    assert ledger.balance(ledger.platform_fees("usd")) == 900
    too_many = [ledger.Posting("approval", f"sub_x{i}", ((ledger.escrow("b1", "usd"), 66),
                (ledger.worker_available("w", "usd"), -66))) for i in range(2)]
    with pytest.raises(ledger.InsufficientFunds):
        ledger.post_many(too_many)
    db_session.rollback()
    with pytest.raises(ledger.AlreadyPosted):
        ledger.post_many(postings[:1])
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == 151


def test_concurrent_spending_of_one_escrow_never_overdraws(app):
    """Twenty threads, each with its own connection, try to spend 100 from an escrow of 1000."""
    from marketplace.extensions import db

    with app.app_context():
        fund("race", 1000, "pay_race")
        db.session.commit()
    outcomes = []
    barrier = threading.Barrier(20)

    def spend(i):
        with app.app_context():
            barrier.wait()
            try:
                ledger.post("approval", f"sub_r{i}", [(ledger.escrow("race", "usd"), 100),
                                                      (ledger.worker_available(f"w{i}", "usd"), -100)])
                db.session.commit()
                outcomes.append("ok")
            except ledger.InsufficientFunds:
                db.session.rollback()
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 10
    with app.app_context():
        assert ledger.balance(ledger.escrow("race", "usd")) == 0


def test_the_database_itself_refuses_orphan_lines_unbalanced_entries_and_changes(db_session):
    """Below the ledger module: PostgreSQL checks every statement's lines as a set (migration 0004)
    and keeps ledger rows append-only, whatever code writes to it."""
    fund("b1", 1000, "pay_1")
    db_session.commit()
    ids = db_session.execute(sa.text(
        "SELECT l.entry_id, l.account_id FROM ledger_lines l ORDER BY l.amount_cents LIMIT 1")).one()

    def refused(sql: str, message: str, **params) -> None:
        with pytest.raises(sa.exc.DBAPIError, match=message):
            db_session.execute(sa.text(sql), params)
        db_session.rollback()

    refused("INSERT INTO ledger_lines (entry_id, account_id, amount_cents) VALUES ('ent_none', :a, 5), ('ent_none', :a, -5)",
            "refers to no ledger entry", a=ids.account_id)
    refused("INSERT INTO ledger_lines (entry_id, account_id, amount_cents) VALUES (:e, 'led_none', 5), (:e, :a, -5)",
            "refers to no ledger account", e=ids.entry_id, a=ids.account_id)
    refused("INSERT INTO ledger_lines (entry_id, account_id, amount_cents) VALUES (:e, :a, 7)",
            "does not balance", e=ids.entry_id, a=ids.account_id)
    refused("UPDATE ledger_lines SET amount_cents = amount_cents * 2", "append-only")
    refused("DELETE FROM ledger_entries", "append-only")
    refused("UPDATE ledger_accounts SET currency = 'eur'", "append-only")
    # A balanced batch of lines on real rows goes in: the checks are not simply refusing everything.
    db_session.execute(sa.text(
        "INSERT INTO ledger_lines (entry_id, account_id, amount_cents) VALUES (:e, :a, 3), (:e, :a, -3)"),
        {"e": ids.entry_id, "a": ids.account_id})
    db_session.commit()
    assert ledger.balance(ledger.escrow("b1", "usd")) == 1000


def test_paying_out_of_our_stripe_cash_does_not_lock_it(db_session, app):
    """Cash at Stripe is lowered by every payout and refund in the platform. It is not locked for
    that (its floor follows from the guarded accounts), so a posting lowering it does not queue
    behind another transaction that holds its row."""
    import threading

    from marketplace.extensions import db

    fund("b1", 1000, "pay_1")
    ledger.post("seed", "w1", [(ledger.escrow("b1", "usd"), 300), (ledger.worker_available("w1", "usd"), -300)])
    db_session.commit()
    clearing_id = db_session.execute(sa.text("SELECT id FROM ledger_accounts WHERE kind = 'stripe_clearing'")).scalar_one()
    done = []

    def pay_out():
        with app.app_context():
            ledger.post("seed", "payout-1", [(ledger.worker_available("w1", "usd"), 300),
                                             (ledger.stripe_clearing("usd"), -300)])
            db.session.commit()
            done.append(True)
            db.session.remove()

    with row_locked(app, "ledger_accounts", clearing_id):
        worker = threading.Thread(target=pay_out)
        worker.start()
        worker.join(timeout=10)
    assert done == [True]
    assert ledger.balance(ledger.stripe_clearing("usd")) == 700
    with pytest.raises(ledger.InsufficientFunds):  # the worker's balance is still guarded
        ledger.post("seed", "payout-2", [(ledger.worker_available("w1", "usd"), 1),
                                         (ledger.stripe_clearing("usd"), -1)])
