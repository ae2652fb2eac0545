"""Stripe's fee on a brief's payment, booked from the charge's balance transaction with the funding."""

from __future__ import annotations

import sqlalchemy as sa

from stripe_standin.balance import card_fee
from tests.factories import auth, create_brief, fund_brief, sign_up_brand, wait_for
from tests.test_payouts import stripe_client


def ledger_balance(db_session, code: str) -> int:
    """Debit-normal balance (cash at Stripe, Stripe's fees) of an account: the sum of its lines."""
    return int(db_session.execute(sa.text(
        "SELECT COALESCE(SUM(l.amount_cents), 0) FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id "
        "WHERE a.code = :code"), {"code": code}).scalar_one())


def test_funding_books_stripes_fee_from_the_charges_balance_transaction(client, standin, db_session):
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    fund_brief(client, key, brief["id"], standin)

    [txn] = stripe_client().v1.balance_transactions.list(params={"type": "charge"}).data
    assert txn.fee == card_fee(txn.amount) > 0
    assert ledger_balance(db_session, "stripe:fees:usd") == txn.fee
    # Our cash at Stripe is what Stripe's balance got: the charge's net (pending, as it is at Stripe).
    assert ledger_balance(db_session, "stripe:clearing:usd") == txn.net == sum(standin.balance_totals().values())
    charge, fee = db_session.execute(sa.text("SELECT stripe_charge_id, stripe_fee_cents FROM payments")).one()
    assert (charge, fee) == (txn.source, txn.fee)
    # The brand's escrow holds the whole payment: the fee is the platform's cost, not the brief's.
    money = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["money"]
    assert money["funded_cents"] == txn.amount


def test_a_funding_event_whose_balance_transaction_cannot_be_read_is_502_and_booked_whole_when_redelivered(
        client, standin, db_session, app, monkeypatch):
    import stripe

    from marketplace.payments import gateway

    with app.app_context():
        charges = gateway._client().v1.charges

    def unreachable(*args, **kwargs):
        raise stripe.APIConnectionError("connection reset")

    monkeypatch.setattr(charges, "retrieve", unreachable)
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    standin.succeed_payment_intent(intent["payment_intent_id"])
    assert standin.wait_for_webhooks(10)

    (event,) = standin.events("payment_intent.succeeded")
    assert [d["status"] for d in event["deliveries"]] == [502]  # Stripe will deliver it again
    counts = db_session.execute(sa.text(
        "SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM stripe_events), "
        "(SELECT count(*) FROM payments WHERE status = 'succeeded')")).one()
    assert tuple(counts) == (0, 0, 0)  # nothing booked, not even half, and the event not marked seen

    monkeypatch.undo()
    standin.resend_event(event["id"])
    assert standin.wait_for_webhooks(10)
    wait_for(lambda: client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["status"] == "funded")
    [txn] = stripe_client().v1.balance_transactions.list(params={"type": "charge"}).data
    assert ledger_balance(db_session, "stripe:fees:usd") == txn.fee
    kinds = db_session.execute(sa.text("SELECT kind FROM ledger_entries ORDER BY kind")).scalars().all()
    assert kinds == ["funding", "stripe_fee"]
