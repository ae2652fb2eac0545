"""`flask payments reconcile`: our ledger's cash at Stripe against Stripe's balance and its balance
transactions, each of which we should know about (by source id, amount and fee).

Like stripe_events.py it only reads across domains, asking each owner for what it booked:
payments/ its charges and refunds, payouts/ its transfers, ledger/ the cash at Stripe.
"""

from __future__ import annotations

from collections import defaultdict

from marketplace.ledger import queries as ledger_queries
from marketplace.payments import gateway
from marketplace.payments import service as payments
from marketplace.payouts import service as payouts

NO_DIFFERENCES = "No differences: our cash at Stripe matches Stripe's balance and every balance transaction."


def _source_id(txn) -> str | None:
    source = txn.source
    return source if isinstance(source, str) or source is None else source.id


def differences() -> list[str]:
    """Every way our books and Stripe's disagree, one line each (empty when they agree)."""
    found: list[str] = []
    cash = ledger_queries.kind_balances("stripe_clearing")
    balance = gateway.platform_balance()
    for currency in sorted(set(cash) | set(balance)):
        theirs = balance.get(currency, {"available": 0, "pending": 0})
        total = theirs["available"] + theirs["pending"]
        if cash.get(currency, 0) != total:
            found.append(f"balance {currency}: our cash at Stripe is {cash.get(currency, 0)}, Stripe's balance is "
                         f"{total} ({theirs['available']} available + {theirs['pending']} pending); "
                         f"difference {cash.get(currency, 0) - total}")

    charges, refunds, transfers = payments.charges_booked(), payments.refunds_booked(), payouts.transfers_booked()
    seen_charges, seen_refunds, seen_transfers = set(), set(), set()
    reversed_at_stripe: dict[str, int] = defaultdict(int)
    for txn in gateway.balance_transactions():
        source, kind, amount, fee = _source_id(txn), txn.type, int(txn.amount), int(txn.fee)
        label = f"{txn.id} ({kind} {source or 'with no source'}, {amount} {txn.currency}, fee {fee})"
        if kind == "charge" and source in charges:
            ours = charges[source]
            seen_charges.add(source)
            if amount != ours["amount_cents"]:
                found.append(f"{label}: we booked {ours['amount_cents']} for payment {ours['payment_id']}")
            if fee != ours["fee_cents"]:
                found.append(f"{label}: we booked a fee of {ours['fee_cents']} for payment {ours['payment_id']}")
            continue
        if fee:
            found.append(f"{label}: a Stripe fee we did not book")
        if kind == "refund" and source in refunds:
            seen_refunds.add(source)
            if -amount != refunds[source]["amount_cents"]:
                found.append(f"{label}: we booked refund {refunds[source]['refund_id']} as "
                             f"{refunds[source]['amount_cents']}")
        elif kind == "refund_failure" and source in refunds and refunds[source]["failed_later"]:
            if amount != refunds[source]["amount_cents"]:
                found.append(f"{label}: we booked refund {refunds[source]['refund_id']}'s return as "
                             f"{refunds[source]['amount_cents']}")
        elif kind == "transfer" and source in transfers:
            seen_transfers.add(source)
            if -amount != transfers[source]["amount_cents"]:
                found.append(f"{label}: we booked payout item {transfers[source]['item_id']} as "
                             f"{transfers[source]['amount_cents']}")
        elif kind == "transfer_refund" and getattr(txn.source, "transfer", None) in transfers:
            reversed_at_stripe[txn.source.transfer] += amount
        else:
            found.append(f"{label}: not in our books")

    for charge, ours in charges.items():
        if charge not in seen_charges:
            found.append(f"payment {ours['payment_id']}: charge {charge} is not among Stripe's balance transactions")
    for refund, ours in refunds.items():
        if refund not in seen_refunds:
            found.append(f"refund {ours['refund_id']}: Stripe refund {refund} is not among its balance transactions")
    for transfer, ours in transfers.items():
        if transfer not in seen_transfers:
            found.append(f"payout item {ours['item_id']}: transfer {transfer} is not among Stripe's balance transactions")
        if reversed_at_stripe.get(transfer, 0) != ours["reversed_cents"]:
            found.append(f"payout item {ours['item_id']}: Stripe reversed {reversed_at_stripe.get(transfer, 0)} of "
                         f"transfer {transfer}, we booked {ours['reversed_cents']}")
    return found
