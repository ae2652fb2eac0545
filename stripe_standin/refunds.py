"""Refunds of a charge, whole or in part, and the test control that fails one days later as a
bank would."""

from __future__ import annotations

from typing import Any

from stripe_standin.balance import Balance
from stripe_standin.events import Events
from stripe_standin.protocol import StripeError, _Ctx, _int, _invalid, _metadata, _missing


class Refunds(Balance, Events):
    def refund_create(self, ctx: _Ctx, p: dict) -> dict:
        if p.get("charge"):
            charge = self._get("charge", p["charge"], param="charge", status=400)
        elif p.get("payment_intent"):
            pi = self._get("payment_intent", p["payment_intent"], param="payment_intent",
                           status=400)
            if pi["status"] != "succeeded" or not pi["latest_charge"]:
                raise StripeError(400, f"This PaymentIntent ({pi['id']}) does not have a "
                                  "successful charge to refund.",
                                  code="charge_not_refundable", param="payment_intent")
            charge = self.stores["charge"][pi["latest_charge"]]
        else:
            raise _missing("payment_intent")
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge['id']} has already been refunded.",
                              code="charge_already_refunded")
        amount = _int(p, "amount", minimum=1)
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise StripeError(400, f"Refund amount ({amount}) is greater than unrefunded amount "
                              f"on charge ({remaining})", code="amount_too_large", param="amount")
        reason = p.get("reason")
        if reason not in (None, "", "duplicate", "fraudulent", "requested_by_customer"):
            raise _invalid("reason", f"Invalid reason: {reason}")
        refund = self._put(self._base(
            "re", "refund", amount=amount, currency=charge["currency"], charge=charge["id"],
            payment_intent=charge["payment_intent"], status="succeeded", reason=reason or None,
            metadata=_metadata(p), balance_transaction=None))
        # Stripe keeps its fee on a refund: the whole amount leaves the balance. It comes out of the
        # available balance, or, when that is short, out of the pending funds (as they settle).
        pending_until = max((t["available_on"] for t in self.stores["balance_transaction"].values()
                             if t["currency"] == charge["currency"] and t["available_on"] > self.clock()),
                            default=None)
        short = self._available(charge["currency"]) < amount
        refund["balance_transaction"] = self._txn(
            "refund", -amount, charge["currency"], refund["id"],
            available_on=pending_until if short and pending_until else None)["id"]
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self.emit("refund.created", refund, ctx=ctx)
        self.emit("charge.refunded", charge, ctx=ctx,
                  previous={"amount_refunded": charge["amount_refunded"] - amount})
        return refund

    def fail_refund(self, re_id: str, reason: str = "expired_or_canceled_card") -> dict:
        """What a bank does days later: the refund fails and its money returns to the balance."""
        with self.lock:
            refund = self._get("refund", re_id)
            if refund["status"] != "succeeded":
                raise StripeError(400, f"Refund {re_id} is {refund['status']}.", code="refund_unexpected_state")
            refund.update(status="failed", failure_reason=reason)
            charge = self.stores["charge"][refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            refund["failure_balance_transaction"] = self._txn(
                "refund_failure", refund["amount"], refund["currency"], refund["id"])["id"]
            self.emit("refund.failed", refund)
            self.emit("charge.refund.updated", refund)
            return refund

    def refund_retrieve(self, ctx: _Ctx, p: dict, re_id: str) -> dict:
        return self._expand(self._get("refund", re_id), p)

    def refund_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.stores["refund"].values())
        for key in ("payment_intent", "charge"):
            if p.get(key):
                items = [o for o in items if o[key] == p[key]]
        return self._list(items, p, "/v1/refunds")


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/refunds", Refunds.refund_create),
    ("GET", "/v1/refunds", Refunds.refund_list),
    ("GET", "/v1/refunds/{id}", Refunds.refund_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/refunds/([^/]+)/fail", "POST",
     lambda e, p, q, i: e.fail_refund(i, p.get("reason", "expired_or_canceled_card"))),
]
