"""Transfers to connected accounts and their reversals, and the count of transfers made per
Idempotency-Key (how tests see that a payout was sent once)."""

from __future__ import annotations

from typing import Any

from stripe_standin.balance import Balance
from stripe_standin.events import Events
from stripe_standin.protocol import (
    StripeError,
    _Ctx,
    _currency,
    _int,
    _metadata,
    _no_such,
    _required,
)
from stripe_standin.store import _new_id


class Transfers(Balance, Events):
    def tr_create(self, ctx: _Ctx, p: dict) -> dict:
        amount = _int(p, "amount", required=True, minimum=1)
        currency = _currency(p)
        dest = _required(p, "destination")
        acct = self.stores["account"].get(dest)
        if acct is None:
            raise StripeError(400, f"No such destination: '{dest}'", code="resource_missing",
                              param="destination")
        if acct["capabilities"].get("transfers") != "active":
            raise StripeError(400, "Your destination account needs to have at least one of the "
                              "following capabilities enabled: transfers, crypto_transfers, "
                              "legacy_payments", code="insufficient_capabilities_for_transfer",
                              param="destination")
        source = p.get("source_transaction")
        tr_id = _new_id("tr")
        if source:
            # Paid out of a charge's own funds: allowed before they are available (they are
            # drawn from the pending balance until then), never beyond what the charge brought in.
            charge = self.stores["charge"].get(source)
            if charge is None or charge["status"] != "succeeded":
                raise StripeError(400, f"No such charge: '{source}'", code="resource_missing",
                                  param="source_transaction")
            if charge["currency"] != currency:
                raise StripeError(400, "The currency of source_transaction's balance transaction "
                                  f"({charge['currency']}) must be the same as the transfer currency "
                                  f"({currency}).", param="source_transaction")
            used = sum(t["amount"] - t["amount_reversed"] for t in self.stores["transfer"].values()
                       if t.get("source_transaction") == source)
            if used + amount > charge["amount_captured"] - charge["amount_refunded"]:
                raise StripeError(400, "Transfers using this transaction as a source must not exceed "
                                  "the source amount.", code="transfer_source_balance_parameters_mismatch",
                                  param="source_transaction")
            available_on = max(self.clock(),
                               self.stores["balance_transaction"][charge["balance_transaction"]]["available_on"])
        else:
            if self._available(currency) < amount:
                raise StripeError(400, "You have insufficient available funds in your Stripe "
                                  "account. Try adding funds directly to your available balance by "
                                  "creating Charges using the 4000000000000077 test card. See: "
                                  "https://stripe.com/docs/testing#available-balance",
                                  code="balance_insufficient")
            available_on = None
        txn = self._txn("transfer", -amount, currency, tr_id, available_on=available_on)
        tr = self._base("tr", "transfer", id=tr_id, amount=amount, amount_reversed=0, currency=currency,
                        description=p.get("description"), destination=dest,
                        destination_payment=_new_id("py"), balance_transaction=txn["id"],
                        metadata=_metadata(p), reversed=False,
                        source_transaction=source or None, source_type="card",
                        transfer_group=p.get("transfer_group"))
        tr["reversals"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                           "url": f"/v1/transfers/{tr['id']}/reversals"}
        self._put(tr)
        self._acct_credit(dest, currency, amount)
        if ctx.idem_key:
            self.transfer_keys[ctx.idem_key] = self.transfer_keys.get(ctx.idem_key, 0) + 1
        self.emit("transfer.created", tr, ctx=ctx)
        return tr

    def tr_retrieve(self, ctx: _Ctx, p: dict, tr_id: str) -> dict:
        return self._expand(self._get("transfer", tr_id), p)

    def tr_update(self, ctx: _Ctx, p: dict, tr_id: str) -> dict:
        tr = self._get("transfer", tr_id)
        if "description" in p:
            tr["description"] = p["description"] or None
        tr["metadata"] = _metadata(p, current=tr["metadata"])
        return tr

    def tr_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.stores["transfer"].values())
        for key in ("destination", "transfer_group"):
            if p.get(key):
                items = [o for o in items if o[key] == p[key]]
        return self._list(items, p, "/v1/transfers")

    def rev_create(self, ctx: _Ctx, p: dict, tr_id: str) -> dict:
        tr = self._get("transfer", tr_id)
        remaining = tr["amount"] - tr["amount_reversed"]
        if remaining <= 0:
            raise StripeError(400, f"Transfer {tr_id} has already been fully reversed.",
                              code="transfer_already_reversed")
        amount = _int(p, "amount", minimum=1)
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise StripeError(400, f"Reversal amount ({amount}) is greater than the amount "
                              f"remaining on the transfer ({remaining}).",
                              code="amount_too_large", param="amount")
        rev_id = _new_id("trr")
        txn = self._txn("transfer_refund", amount, tr["currency"], rev_id)
        rev = self._put(self._base("trr", "transfer_reversal", id=rev_id, amount=amount,
                                   currency=tr["currency"], transfer=tr_id,
                                   metadata=_metadata(p), balance_transaction=txn["id"],
                                   destination_payment_refund=_new_id("pyr"),
                                   source_refund=None))
        tr["amount_reversed"] += amount
        tr["reversed"] = tr["amount_reversed"] >= tr["amount"]
        tr["reversals"]["data"].insert(0, rev)
        tr["reversals"]["total_count"] += 1
        self._acct_credit(tr["destination"], tr["currency"], -amount)
        self.emit("transfer.reversed", tr, ctx=ctx,
                  previous={"amount_reversed": tr["amount_reversed"] - amount})
        return rev

    def rev_list(self, ctx: _Ctx, p: dict, tr_id: str) -> dict:
        self._get("transfer", tr_id)
        items = [r for r in self.stores["transfer_reversal"].values() if r["transfer"] == tr_id]
        return self._list(items, p, f"/v1/transfers/{tr_id}/reversals")

    def rev_retrieve(self, ctx: _Ctx, p: dict, tr_id: str, rev_id: str) -> dict:
        rev = self._get("transfer_reversal", rev_id)
        if rev["transfer"] != tr_id:
            raise _no_such("transfer_reversal", rev_id)
        return rev

    def transfer_counts(self) -> dict:
        with self.lock:
            return {"counts": dict(self.transfer_keys),
                    "total": len(self.stores["transfer"])}


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/transfers", Transfers.tr_create),
    ("GET", "/v1/transfers", Transfers.tr_list),
    ("GET", "/v1/transfers/{id}", Transfers.tr_retrieve),
    ("POST", "/v1/transfers/{id}", Transfers.tr_update),
    ("POST", "/v1/transfers/{id}/reversals", Transfers.rev_create),
    ("GET", "/v1/transfers/{id}/reversals", Transfers.rev_list),
    ("GET", "/v1/transfers/{id}/reversals/{rid}", Transfers.rev_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/transfers/counts", "GET", lambda e, p, q: e.transfer_counts()),
]
