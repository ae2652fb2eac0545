"""Checkout Sessions: a hosted payment page that makes a PaymentIntent when paid, and the test
controls that complete or expire one."""

from __future__ import annotations

import html
from typing import Any

from stripe_standin.payment_intents import PaymentIntents
from stripe_standin.protocol import (
    StripeError,
    _Ctx,
    _html_resp,
    _int,
    _invalid,
    _metadata,
    _missing,
    _no_such,
    _required,
    _Resp,
)
from stripe_standin.store import _now, _rand


class CheckoutSessions(PaymentIntents):
    def cs_create(self, ctx: _Ctx, p: dict) -> dict:
        mode = _required(p, "mode")
        if mode != "payment":
            raise _invalid("mode", f"The stand-in only supports mode=payment, not {mode!r}.")
        items = p.get("line_items")
        if not isinstance(items, list) or not items:
            raise _missing("line_items")
        total, currency = 0, None
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("price_data"), dict):
                if isinstance(item, dict) and item.get("price"):
                    raise _no_such("price", item["price"], f"line_items[{i}][price]", 400)
                raise _missing(f"line_items[{i}][price_data]")
            pd = item["price_data"]
            unit = _int(pd, "unit_amount", minimum=0)
            if unit is None:
                raise _missing(f"line_items[{i}][price_data][unit_amount]")
            cur = str(pd.get("currency") or "").lower()
            if not cur:
                raise _missing(f"line_items[{i}][price_data][currency]")
            if currency and cur != currency:
                raise _invalid("line_items", "All line items must use the same currency.")
            currency = cur
            total += unit * (_int(item, "quantity", minimum=1) or 1)
        pid = p.get("payment_intent_data") if isinstance(p.get("payment_intent_data"), dict) else {}
        cs_id = f"cs_test_{_rand(58)}"
        cs = {"id": cs_id, "object": "checkout.session", "created": _now(), "livemode": False,
              "mode": "payment", "status": "open", "payment_status": "unpaid",
              "amount_subtotal": total, "amount_total": total, "currency": currency,
              "url": f"{ctx.base_url}/_standin/checkout/{cs_id}",
              "success_url": p.get("success_url"), "cancel_url": p.get("cancel_url"),
              "client_reference_id": p.get("client_reference_id"),
              "customer": p.get("customer"), "customer_email": p.get("customer_email"),
              "metadata": _metadata(p), "payment_intent": None,
              "expires_at": _int(p, "expires_at") or _now() + 24 * 3600,
              "_payment_intent_data": {"metadata": _metadata(pid),
                                       "description": pid.get("description"),
                                       "transfer_group": pid.get("transfer_group")}}
        return self._put(cs)

    def cs_retrieve(self, ctx: _Ctx, p: dict, cs_id: str) -> dict:
        return self._expand(self._get("checkout.session", cs_id, "checkout.session"), p)

    def cs_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.stores["checkout.session"].values())
        if p.get("payment_intent"):
            items = [o for o in items if o["payment_intent"] == p["payment_intent"]]
        return self._list(items, p, "/v1/checkout/sessions")

    def cs_expire(self, ctx: _Ctx | None, p: dict, cs_id: str) -> dict:
        cs = self._get("checkout.session", cs_id, "checkout.session")
        if cs["status"] != "open":
            raise StripeError(400, f"Only Checkout Sessions with a status in [\"open\"] can be "
                              f"expired. This session has status {cs['status']!r}.",
                              code="checkout_session_unexpected_state")
        cs["status"] = "expired"
        self.emit("checkout.session.expired", self._public(cs), ctx=ctx)
        return cs

    def complete_checkout_session(self, cs_id: str) -> dict:
        with self.lock:
            cs = self._get("checkout.session", cs_id, "checkout.session")
            if cs["status"] != "open":
                raise StripeError(400, f"Checkout Session {cs_id} is {cs['status']}.",
                                  code="checkout_session_unexpected_state")
            pid = cs["_payment_intent_data"]
            pi = self.pi_create(_Ctx("", None, None, ""), {
                "amount": cs["amount_total"], "currency": cs["currency"],
                "metadata": pid["metadata"], "description": pid["description"],
                "transfer_group": pid["transfer_group"]})
            pi["payment_method"] = "pm_card_visa"
            self._succeed_pi(pi)
            cs.update(status="complete", payment_status="paid", payment_intent=pi["id"])
            self.emit("checkout.session.completed", self._public(cs))
            return self._public(cs)

    def expire_checkout_session(self, cs_id: str) -> dict:
        with self.lock:
            return self._public(self.cs_expire(None, {}, cs_id))

    def checkout_page(self, cs_id: str) -> _Resp:
        with self.lock:
            cs = self._get("checkout.session", cs_id, "checkout.session")
            amount = f"{cs['amount_total'] / 100:.2f} {cs['currency'].upper()}"
            cancel = html.escape(cs["cancel_url"] or "#")
            status = cs["status"]
        action = f"/_standin/checkout/sessions/{cs_id}/complete?redirect=1"
        return _html_resp(200, (
            f"<!doctype html><title>Stand-in Checkout</title><h1>Pay {amount}</h1>"
            f"<p id=status>{html.escape(status)}</p>"
            f"<form method=post action='{html.escape(action)}'>"
            "<button id=pay type=submit>Pay</button></form>"
            f"<a id=cancel href='{cancel}'>Cancel</a>"))

    def complete_and_redirect(self, cs_id: str, redirect: bool) -> Any:
        cs = self.complete_checkout_session(cs_id)
        if redirect and cs.get("success_url"):
            url = cs["success_url"].replace("{CHECKOUT_SESSION_ID}", cs_id)
            return _html_resp(303, "", {"Location": url})
        return cs


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/checkout/sessions", CheckoutSessions.cs_create),
    ("GET", "/v1/checkout/sessions", CheckoutSessions.cs_list),
    ("GET", "/v1/checkout/sessions/{id}", CheckoutSessions.cs_retrieve),
    ("POST", "/v1/checkout/sessions/{id}/expire", CheckoutSessions.cs_expire),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/checkout/sessions/([^/]+)/complete", "POST",
     lambda e, p, q, i: e.complete_and_redirect(i, bool(q.get("redirect")))),
    (r"/_standin/checkout/sessions/([^/]+)/expire", "POST",
     lambda e, p, q, i: e.expire_checkout_session(i)),
    (r"/_standin/checkout/([^/]+)", "GET", lambda e, p, q, i: e.checkout_page(i)),
]
