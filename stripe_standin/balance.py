"""Balance: the platform's available balance per currency and each connected account's, moved
by charges, refunds, transfers and reversals."""

from __future__ import annotations

from typing import Any

from stripe_standin.protocol import _Ctx
from stripe_standin.store import Store


class Balance(Store):
    def _credit(self, currency: str, amount: int) -> None:
        self.balance[currency] = self.balance.get(currency, 0) + amount

    def _acct_credit(self, acct: str, currency: str, amount: int) -> None:
        bal = self.acct_balance.setdefault(acct, {})
        bal[currency] = bal.get(currency, 0) + amount

    def balance_retrieve(self, ctx: _Ctx, p: dict) -> dict:
        amounts = self.acct_balance.get(ctx.account, {}) if ctx.account else self.balance
        amounts = amounts or {"usd": 0}
        return {"object": "balance", "livemode": False,
                "available": [{"amount": a, "currency": c, "source_types": {"card": a}}
                              for c, a in sorted(amounts.items())],
                "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}}
                            for c in sorted(amounts)]}

    def set_balance(self, amount: int, currency: str = "usd") -> dict:
        with self.lock:
            self.balance[currency.lower()] = int(amount)
            return self.balance_retrieve(_Ctx("", None, None, ""), {})


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/balance", Balance.balance_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/balance", "POST",
     lambda e, p, q: e.set_balance(int(p["amount"]), p.get("currency", "usd"))),
]
