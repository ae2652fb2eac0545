"""Connect accounts and account links: create, update, delete, onboarding through a link, and the
test controls that make an account ready (or not) to receive transfers."""

from __future__ import annotations

import html
from typing import Any

from stripe_standin.events import Events
from stripe_standin.protocol import (
    _bool,
    _Ctx,
    _html_resp,
    _invalid,
    _metadata,
    _missing,
    _required,
    _Resp,
)
from stripe_standin.store import _now, _rand


class Accounts(Events):
    def acct_create(self, ctx: _Ctx, p: dict) -> dict:
        acct_type = p.get("type") or ("express" if p.get("controller") else None)
        if not acct_type:
            raise _missing("type")
        if acct_type not in ("express", "custom", "standard"):
            raise _invalid("type", "Invalid type: must be one of custom, express, or standard")
        requested = p.get("capabilities") if isinstance(p.get("capabilities"), dict) else {}
        caps = {name: "inactive" for name, v in requested.items()
                if isinstance(v, dict) and _bool(v.get("requested"))}
        acct = {"id": f"acct_1{_rand(15)}", "object": "account", "type": acct_type,
                "created": _now(), "livemode": False, "country": p.get("country") or "US",
                "email": p.get("email"), "default_currency": "usd",
                "business_type": p.get("business_type"), "charges_enabled": False,
                "payouts_enabled": False, "details_submitted": False, "capabilities": caps,
                "requirements": self._requirements(False), "metadata": _metadata(p)}
        return self._put(acct)

    @staticmethod
    def _requirements(ready: bool) -> dict:
        due = [] if ready else ["external_account", "individual.verification.document",
                                "tos_acceptance.date"]
        return {"currently_due": due, "eventually_due": list(due), "past_due": list(due),
                "pending_verification": [], "errors": [], "current_deadline": None,
                "disabled_reason": None if ready else "requirements.past_due"}

    def acct_retrieve(self, ctx: _Ctx, p: dict, acct_id: str) -> dict:
        return self._expand(self._get("account", acct_id), p)

    def acct_update(self, ctx: _Ctx, p: dict, acct_id: str) -> dict:
        acct = self._get("account", acct_id)
        for key in ("email", "business_type"):
            if key in p:
                acct[key] = p[key] or None
        if isinstance(p.get("capabilities"), dict):
            for name, v in p["capabilities"].items():
                if isinstance(v, dict) and _bool(v.get("requested")):
                    acct["capabilities"].setdefault(name, "inactive")
                elif isinstance(v, dict) and "requested" in v:
                    acct["capabilities"].pop(name, None)
        acct["metadata"] = _metadata(p, current=acct["metadata"])
        self.emit("account.updated", acct, ctx=ctx, account=acct_id)
        return acct

    def acct_list(self, ctx: _Ctx, p: dict) -> dict:
        return self._list(list(self.stores["account"].values()), p, "/v1/accounts")

    def acct_delete(self, ctx: _Ctx, p: dict, acct_id: str) -> dict:
        self._get("account", acct_id)
        del self.stores["account"][acct_id]
        return {"id": acct_id, "object": "account", "deleted": True}

    def set_account_ready(self, acct_id: str, ready: bool = True) -> dict:
        with self.lock:
            acct = self._get("account", acct_id)
            previous = {"capabilities": dict(acct["capabilities"]),
                        "payouts_enabled": acct["payouts_enabled"]}
            state = "active" if ready else "inactive"
            acct["capabilities"]["transfers"] = state
            if "card_payments" in acct["capabilities"]:
                acct["capabilities"]["card_payments"] = state
            acct.update(payouts_enabled=ready, details_submitted=ready or acct["details_submitted"],
                        charges_enabled=ready and "card_payments" in acct["capabilities"],
                        requirements=self._requirements(ready))
            self.emit("account.updated", acct, account=acct_id, previous=previous)
            return acct

    # ---- Account Links
    def link_create(self, ctx: _Ctx, p: dict) -> dict:
        acct_id = _required(p, "account")
        link_type = _required(p, "type")
        if link_type not in ("account_onboarding", "account_update"):
            raise _invalid("type", f"Invalid type: {link_type}")
        self._get("account", acct_id, param="account", status=400)
        token = _rand(24)
        link = {"object": "account_link", "created": _now(), "expires_at": _now() + 300,
                "url": f"{ctx.base_url}/_standin/onboard/{acct_id}?link={token}"}
        self.stores["account_link"][token] = {
            "account": acct_id, "return_url": p.get("return_url"),
            "refresh_url": p.get("refresh_url"), "expires_at": link["expires_at"]}
        return link

    def onboard(self, acct_id: str, token: str | None) -> _Resp:
        with self.lock:
            link = self.stores["account_link"].get(token or "")
            self.set_account_ready(acct_id, True)
        if link and link["return_url"]:
            return _html_resp(303, "", {"Location": link["return_url"]})
        return _html_resp(200, f"<h1>Stand-in onboarding complete for {html.escape(acct_id)}</h1>")


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/accounts", Accounts.acct_create),
    ("GET", "/v1/accounts", Accounts.acct_list),
    ("GET", "/v1/accounts/{id}", Accounts.acct_retrieve),
    ("POST", "/v1/accounts/{id}", Accounts.acct_update),
    ("DELETE", "/v1/accounts/{id}", Accounts.acct_delete),
    ("POST", "/v1/account_links", Accounts.link_create),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/accounts/([^/]+)/ready", "POST", lambda e, p, q, i: e.set_account_ready(i, True)),
    (r"/_standin/accounts/([^/]+)/not_ready", "POST",
     lambda e, p, q, i: e.set_account_ready(i, False)),
    (r"/_standin/onboard/([^/]+)", "GET", lambda e, p, q, i: e.onboard(i, q.get("link"))),
]
