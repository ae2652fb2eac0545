"""Balance and balance transactions: every movement of the platform's money (a charge and its fee,
a refund, a transfer, a reversal, an adjustment) is a balance transaction with its `fee`, `net` and
`available_on`; the balance is their sum, `pending` until `available_on` and `available` after.

As live, the platform starts with nothing: card money arrives pending (available after
``availability_days``) less Stripe's card fee, and a transfer can only spend what is available
(or what a named charge brought in, with ``source_transaction``). The stand-in's clock moves
forward with the ``advance_time`` control; ``make_funds_available`` is "the days have passed".
Connected accounts' balances are kept as plain totals.
"""

from __future__ import annotations

import time
from typing import Any

from stripe_standin.protocol import _Ctx, _int, _invalid
from stripe_standin.store import Store

DAY = 86_400


def card_fee(amount: int) -> int:
    """Stripe's standard US card pricing: 2.9% + 30¢ (rounded half up)."""
    return (amount * 29 + 500) // 1000 + 30


class Balance(Store):
    def clock(self) -> int:
        """The stand-in's now for money: real time plus whatever the tests advanced it by."""
        return int(time.time()) + self.clock_offset

    def _txn(self, kind: str, amount: int, currency: str, source: str | None, *, fee: int = 0,
             available_on: int | None = None, description: str | None = None) -> dict:
        """Book one balance transaction on the platform's balance; returns it."""
        fee_details = [{"amount": fee, "currency": currency, "description": "Stripe processing fees",
                        "type": "stripe_fee", "application": None}] if fee else []
        txn = self._base("txn", "balance_transaction", amount=amount, currency=currency,
                         fee=fee, fee_details=fee_details, net=amount - fee,
                         available_on=self.clock() if available_on is None else available_on,
                         type=kind, source=source, description=description,
                         reporting_category={"charge": "charge", "refund": "refund",
                                             "refund_failure": "refund_failure",
                                             "transfer": "transfer",
                                             "transfer_refund": "transfer_reversal"}.get(kind, "other_adjustment"),
                         exchange_rate=None)
        txn["created"] = self.clock()
        return self._put(txn)

    def _available(self, currency: str) -> int:
        now = self.clock()
        return sum(t["net"] for t in self.stores["balance_transaction"].values()
                   if t["currency"] == currency and t["available_on"] <= now)

    def _acct_credit(self, acct: str, currency: str, amount: int) -> None:
        bal = self.acct_balance.setdefault(acct, {})
        bal[currency] = bal.get(currency, 0) + amount

    def _with_status(self, txn: dict) -> dict:
        return {**txn, "status": "available" if txn["available_on"] <= self.clock() else "pending"}

    def _totals(self) -> tuple[dict[str, int], dict[str, int]]:
        now = self.clock()
        available: dict[str, int] = {}
        pending: dict[str, int] = {}
        for t in self.stores["balance_transaction"].values():
            side = available if t["available_on"] <= now else pending
            side[t["currency"]] = side.get(t["currency"], 0) + t["net"]
        return available, pending

    def balance_retrieve(self, ctx: _Ctx, p: dict) -> dict:
        if ctx.account:
            available = self.acct_balance.get(ctx.account, {}) or {"usd": 0}
            pending: dict[str, int] = {}
        else:
            available, pending = self._totals()
        currencies = sorted(set(available) | set(pending)) or ["usd"]
        return {"object": "balance", "livemode": False,
                "available": [{"amount": available.get(c, 0), "currency": c,
                               "source_types": {"card": available.get(c, 0)}} for c in currencies],
                "pending": [{"amount": pending.get(c, 0), "currency": c,
                             "source_types": {"card": pending.get(c, 0)}} for c in currencies]}

    def txn_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.stores["balance_transaction"].values())
        for key in ("currency", "type", "source"):
            if p.get(key):
                items = [t for t in items if t[key] == p[key]]
        page = self._list(items, {k: v for k, v in p.items() if k != "expand"}, "/v1/balance_transactions")
        page["data"] = [self._public(self._expand(self._with_status(t), p, "data.")) for t in page["data"]]
        return page

    def txn_retrieve(self, ctx: _Ctx, p: dict, txn_id: str) -> dict:
        return self._expand(self._with_status(self._get("balance_transaction", txn_id)), p)

    # ---- controls
    def set_balance(self, amount: int, currency: str = "usd") -> dict:
        """Make the available balance `amount` with an adjustment (money from outside: a top-up
        that no charge brought in, which `flask payments reconcile` rightly reports)."""
        with self.lock:
            currency = currency.lower()
            delta = int(amount) - self._available(currency)
            if delta:
                self._txn("adjustment", delta, currency, None, description="stand-in set_balance")
            return self.balance_retrieve(_Ctx("", None, None, ""), {})

    def advance_time(self, seconds: int) -> dict:
        """Days pass at the stand-in: pending funds whose available_on is reached become available."""
        with self.lock:
            if int(seconds) < 0:
                raise _invalid("seconds", "Time only moves forward.")
            self.clock_offset += int(seconds)
            return {"now": self.clock(), **self.balance_retrieve(_Ctx("", None, None, ""), {})}

    def make_funds_available(self) -> dict:
        """Every pending fund is available now (the days a card payment waits have passed)."""
        with self.lock:
            latest = max((t["available_on"] for t in self.stores["balance_transaction"].values()), default=0)
            return self.advance_time(max(0, latest - self.clock()))

    def balance_totals(self, currency: str = "usd") -> dict[str, int]:
        with self.lock:
            available, pending = self._totals()
            return {"available": available.get(currency, 0), "pending": pending.get(currency, 0)}


def _advance_ctl(e: Balance, p: dict, q: dict) -> dict:
    seconds = _int(p, "seconds", minimum=0)
    days = _int(p, "days", minimum=0)
    return e.advance_time((seconds or 0) + (days or 0) * DAY)


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/balance", Balance.balance_retrieve),
    ("GET", "/v1/balance_transactions", Balance.txn_list),
    ("GET", "/v1/balance_transactions/{id}", Balance.txn_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/balance", "POST",
     lambda e, p, q: e.set_balance(int(p["amount"]), p.get("currency", "usd"))),
    (r"/_standin/clock/advance", "POST", _advance_ctl),
    (r"/_standin/balance/make_available", "POST", lambda e, p, q: e.make_funds_available()),
]
