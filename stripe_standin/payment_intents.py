"""PaymentIntents and the charges they make: create, confirm, cancel, and the test controls that
succeed or fail one as a customer's card would."""

from __future__ import annotations

from typing import Any

from stripe_standin.balance import DAY, Balance, card_fee
from stripe_standin.events import Events
from stripe_standin.protocol import (
    StripeError,
    _bool,
    _Ctx,
    _currency,
    _int,
    _metadata,
    _missing,
)
from stripe_standin.store import _copy, _now, _rand

# Stripe's minimum charge per currency in minor units (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts);
# 50 for the rest of those we meet.
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50, "dkk": 250,
                  "nok": 300, "sek": 300, "pln": 200, "hkd": 400, "mxn": 1000, "sgd": 50, "nzd": 50}


class PaymentIntents(Balance, Events):
    def pi_create(self, ctx: _Ctx, p: dict) -> dict:
        amount = _int(p, "amount", required=True, minimum=1)
        currency = _currency(p)
        minimum = MINIMUM_CHARGE.get(currency, 50)
        if amount < minimum:
            raise StripeError(400, f"Amount must be at least {minimum} {currency} in minor units",
                              code="amount_too_small", param="amount", store=False)
        apm = p.get("automatic_payment_methods")
        pi = self._base("pi", "payment_intent", amount=amount, amount_capturable=0,
                        amount_received=0, currency=currency, status="requires_payment_method",
                        capture_method=p.get("capture_method", "automatic"),
                        confirmation_method=p.get("confirmation_method", "automatic"),
                        description=p.get("description"), metadata=_metadata(p),
                        automatic_payment_methods=({"enabled": _bool(apm.get("enabled"))}
                                                   if isinstance(apm, dict) else None),
                        payment_method=None, payment_method_types=["card"],
                        latest_charge=None, last_payment_error=None, canceled_at=None,
                        cancellation_reason=None, customer=p.get("customer"),
                        receipt_email=p.get("receipt_email"),
                        transfer_group=p.get("transfer_group"))
        pi["client_secret"] = f"{pi['id']}_secret_{_rand(25)}"
        if p.get("confirm") and _bool(p["confirm"]):
            self._put(pi)
            return self.pi_confirm(ctx, p, pi["id"])
        return self._put(pi)

    def pi_retrieve(self, ctx: _Ctx, p: dict, pi_id: str) -> dict:
        return self._expand(self._get("payment_intent", pi_id), p)

    def pi_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.stores["payment_intent"].values())
        if p.get("customer"):
            items = [o for o in items if o.get("customer") == p["customer"]]
        return self._list(items, p, "/v1/payment_intents")

    def pi_update(self, ctx: _Ctx, p: dict, pi_id: str) -> dict:
        pi = self._get("payment_intent", pi_id)
        if "amount" in p:
            pi["amount"] = _int(p, "amount", minimum=1)
        for key in ("description", "receipt_email", "transfer_group"):
            if key in p:
                pi[key] = p[key] or None
        pi["metadata"] = _metadata(p, current=pi["metadata"])
        return pi

    def pi_confirm(self, ctx: _Ctx, p: dict, pi_id: str) -> dict:
        pi = self._get("payment_intent", pi_id)
        if pi["status"] not in ("requires_payment_method", "requires_confirmation",
                                "requires_action"):
            raise StripeError(400, f"This PaymentIntent's status is {pi['status']}; it cannot "
                              "be confirmed.", code="payment_intent_unexpected_state")
        method = p.get("payment_method") or pi["payment_method"]
        if not method:
            raise _missing("payment_method")
        pi["payment_method"] = method
        if "decline" in method.lower() or "chargedeclined" in method.lower():
            self._fail_pi(pi, ctx)
            raise StripeError(402, "Your card was declined.", type="card_error",
                              code="card_declined", extra={"decline_code": "generic_decline",
                                                           "payment_intent": _copy(pi)})
        return self._succeed_pi(pi, ctx)

    def pi_cancel(self, ctx: _Ctx, p: dict, pi_id: str) -> dict:
        pi = self._get("payment_intent", pi_id)
        if pi["status"] in ("succeeded", "canceled"):
            raise StripeError(400, "You cannot cancel this PaymentIntent because it has a status "
                              f"of {pi['status']}.", code="payment_intent_unexpected_state")
        pi.update(status="canceled", canceled_at=_now(),
                  cancellation_reason=p.get("cancellation_reason"))
        self.emit("payment_intent.canceled", pi, ctx=ctx)
        return pi

    def _succeed_pi(self, pi: dict, ctx: _Ctx | None = None) -> dict:
        if pi["status"] in ("succeeded", "canceled"):
            raise StripeError(400, f"PaymentIntent {pi['id']} is already {pi['status']}.",
                              code="payment_intent_unexpected_state")
        charge = self._base("ch", "charge")
        # The money arrives pending, less Stripe's fee, and is available days later.
        txn = self._txn("charge", pi["amount"], pi["currency"], charge["id"], fee=card_fee(pi["amount"]),
                        available_on=self.clock() + self.availability_days * DAY,
                        description=pi["description"])
        charge = self._put(self._base(
            "ch", "charge", id=charge["id"], amount=pi["amount"], amount_captured=pi["amount"], amount_refunded=0,
            currency=pi["currency"], paid=True, captured=True, refunded=False,
            status="succeeded", payment_intent=pi["id"], metadata=dict(pi["metadata"]),
            description=pi["description"], balance_transaction=txn["id"],
            payment_method=pi["payment_method"] or "pm_card_visa",
            transfer_group=pi.get("transfer_group")))
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"],
                  payment_method=charge["payment_method"], last_payment_error=None)
        self.emit("payment_intent.succeeded", pi, ctx=ctx)
        return pi

    def _fail_pi(self, pi: dict, ctx: _Ctx | None = None, code: str = "card_declined") -> dict:
        if pi["status"] in ("succeeded", "canceled"):
            raise StripeError(400, f"PaymentIntent {pi['id']} is already {pi['status']}.",
                              code="payment_intent_unexpected_state")
        pi.update(status="requires_payment_method", payment_method=None,
                  last_payment_error={"type": "card_error", "code": code,
                                      "decline_code": "generic_decline",
                                      "message": "Your card was declined."})
        self.emit("payment_intent.payment_failed", pi, ctx=ctx)
        return pi

    def succeed_payment_intent(self, pi_id: str) -> dict:
        with self.lock:
            return self._succeed_pi(self._get("payment_intent", pi_id))

    def fail_payment_intent(self, pi_id: str, code: str = "card_declined") -> dict:
        with self.lock:
            return self._fail_pi(self._get("payment_intent", pi_id), code=code)

    # ---- Charges (read-only; created when a PaymentIntent succeeds)
    def charge_retrieve(self, ctx: _Ctx, p: dict, ch_id: str) -> dict:
        return self._expand(self._get("charge", ch_id), p)


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/payment_intents", PaymentIntents.pi_create),
    ("GET", "/v1/payment_intents", PaymentIntents.pi_list),
    ("GET", "/v1/payment_intents/{id}", PaymentIntents.pi_retrieve),
    ("POST", "/v1/payment_intents/{id}", PaymentIntents.pi_update),
    ("POST", "/v1/payment_intents/{id}/confirm", PaymentIntents.pi_confirm),
    ("POST", "/v1/payment_intents/{id}/cancel", PaymentIntents.pi_cancel),
    ("GET", "/v1/charges/{id}", PaymentIntents.charge_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/payment_intents/([^/]+)/succeed", "POST",
     lambda e, p, q, i: e.succeed_payment_intent(i)),
    (r"/_standin/payment_intents/([^/]+)/fail", "POST",
     lambda e, p, q, i: e.fail_payment_intent(i, p.get("code", "card_declined"))),
]
