"""Stripe stand-in: owns a stateful, in-memory fake of the Stripe v1 API subset the marketplace uses.

The real ``stripe`` library talks to it over HTTP::

    standin = StripeStandIn(webhook_url="http://127.0.0.1:5000/webhooks/stripe",
                            webhook_secret="whsec_test").start()
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url})

Covered: PaymentIntents, Checkout Sessions, Charges (read), Refunds, Connect Accounts,
Account Links, Transfers (+ reversals), Balance, Events; Stripe's Idempotency-Key rules;
signed webhooks sent from a background thread; and test controls under ``/_standin/…``
(also available as methods on :class:`StripeStandIn`). Run standalone with
``python -m stripe_standin --port 12111``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import http.client
import json
import re
import secrets
import socket
import statistics
import string
import sys
import threading
import time
import traceback
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

try:  # the events carry the API version the installed library pins
    from stripe._api_version import _ApiVersion

    API_VERSION = _ApiVersion.CURRENT
except Exception:  # pragma: no cover - stripe is a project dependency
    API_VERSION = "2025-01-27.acacia"

_ALNUM = string.ascii_letters + string.digits
_DOCS = "https://stripe.com/docs/error-codes/"


# --------------------------------------------------------------------------- helpers


def _now() -> int:
    return int(time.time())


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_rand(24)}"


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` header value, as Stripe computes it (same as stripe-python's
    ``WebhookSignature.generate_signature_header``)."""
    ts = _now() if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def parse_form(qs: str) -> dict[str, Any]:
    """Decode Stripe's form encoding: ``metadata[k]=v``, ``expand[]=x``, ``items[0][price]=p``."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(qs, keep_blank_values=True):
        m = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", raw_key)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))] if m else [raw_key]
        cur = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(cur))
            if i == len(parts) - 1:
                cur[part] = value
            else:
                if not isinstance(cur.get(part), dict):
                    cur[part] = {}
                cur = cur[part]
    return _listify(root, None)


def _listify(node: Any, parent: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, k) for k, v in node.items()}
    if out and parent != "metadata" and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


class StripeError(Exception):
    """A Stripe-shaped error response. ``store`` says whether an idempotent result is saved
    (Stripe saves results once the endpoint began executing, not parameter-validation failures)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, store: bool = True,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.store, self.extra = code, param, store, extra or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = _DOCS + self.code
        if self.param:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing",
                       param=param, store=False)


def _invalid(param: str, message: str, code: str = "parameter_invalid_string") -> StripeError:
    return StripeError(400, message, code=code, param=param, store=False)


def _no_such(kind: str, obj_id: str, param: str | None = None, status: int = 404) -> StripeError:
    return StripeError(status, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def _required(p: dict, name: str) -> Any:
    value = p.get(name)
    if value is None or value == "":
        raise _missing(name)
    return value


def _int(p: dict, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
    value = p.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid(name, f"Invalid integer: {value}", "parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise _invalid(name, f"This value must be greater than or equal to {minimum}.",
                       "parameter_invalid_integer")
    return number


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


# Stripe's minimum charge per currency in minor units (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts);
# 50 for the rest of those we meet.
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50, "dkk": 250,
                  "nok": 300, "sek": 300, "pln": 200, "hkd": 400, "mxn": 1000, "sgd": 50, "nzd": 50}


def _currency(p: dict, name: str = "currency") -> str:
    cur = str(_required(p, name)).lower()
    if not re.fullmatch(r"[a-z]{3}", cur):
        raise _invalid(name, f"Invalid currency: {cur}.")
    return cur


def _metadata(p: dict, name: str = "metadata", current: dict | None = None) -> dict[str, str]:
    """Stripe semantics: keys merge into ``current``; an empty value unsets a key;
    ``metadata=""`` clears everything."""
    value = p.get(name)
    result = dict(current or {})
    if value is None:
        return result
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid(name, "Invalid hash")
    for key, val in value.items():
        if len(key) > 40:
            raise _invalid(f"{name}[{key}]", "Metadata keys can be at most 40 characters long.")
        if val == "":
            result.pop(key, None)
        elif isinstance(val, str):
            if len(val) > 500:
                raise _invalid(f"{name}[{key}]", "Metadata values can be at most 500 characters.")
            result[key] = val
        else:
            raise _invalid(f"{name}[{key}]", "Invalid metadata value: must be a string")
    if len(result) > 50:
        raise _invalid(name, "Objects can have at most 50 metadata keys.")
    return result


class _Resp:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                 drop: bool = False, route: str = "?"):
        self.status, self.body, self.headers = status, body, dict(headers or {})
        self.drop, self.route = drop, route


def _json_resp(status: int, payload: Any, **kw: Any) -> _Resp:
    body = (json.dumps(payload, indent=2) + "\n").encode()
    return _Resp(status, body, {"Content-Type": "application/json"}, **kw)


def _html_resp(status: int, text: str, headers: dict[str, str] | None = None) -> _Resp:
    return _Resp(status, text.encode(), {"Content-Type": "text/html; charset=utf-8", **(headers or {})})


class _Ctx:
    """Per-request context handed to resource handlers."""

    def __init__(self, base_url: str, idem_key: str | None, account: str | None, request_id: str):
        self.base_url, self.idem_key, self.account, self.request_id = (
            base_url, idem_key, account, request_id)


# --------------------------------------------------------------------------- engine (state)


class _Engine:
    """All state and resource logic. Every public entry point takes ``self.lock``."""

    def __init__(self, *, api_key_prefix: str, initial_balance: int,
                 webhook_url: str | None, webhook_secret: str | None):
        self.lock = threading.RLock()
        self.api_key_prefix = api_key_prefix
        self.initial_balance = initial_balance
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self._cv = threading.Condition(threading.Lock())  # webhook queue
        self._queue: deque[str] = deque()
        self._sending = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.stores: dict[str, dict[str, dict]] = {
                k: {} for k in ("payment_intent", "checkout.session", "charge", "refund",
                                "account", "account_link", "transfer", "transfer_reversal")}
            self.seq: dict[str, int] = {}  # id -> insertion order, for list cursors
            self.balance: dict[str, int] = {"usd": self.initial_balance}
            self.acct_balance: dict[str, dict[str, int]] = {}
            self.idem: dict[tuple[str, str], dict[str, Any]] = {}
            self.transfer_keys: dict[str, int] = {}
            self.faults: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}
            self.payloads: dict[str, str] = {}
            self.deliveries: dict[str, list[dict[str, Any]]] = {}
            self.timings: list[tuple[str, float]] = []
        with self._cv:
            self._queue.clear()
            self._cv.notify_all()

    # ---- storage helpers
    def _put(self, obj: dict) -> dict:
        self.stores[obj["object"]][obj["id"]] = obj
        self.seq.setdefault(obj["id"], len(self.seq))
        return obj

    def _get(self, kind: str, obj_id: str, label: str | None = None, param: str | None = None,
             status: int = 404) -> dict:
        obj = self.stores[kind].get(obj_id)
        if obj is None:
            raise _no_such(label or kind.split(".")[-1], obj_id, param, status)
        return obj

    def _list(self, items: list[dict], p: dict, url: str) -> dict:
        limit = _int(p, "limit", minimum=1) or 10
        if limit > 100:
            raise _invalid("limit", "Invalid limit: must be between 1 and 100",
                           "parameter_invalid_integer")
        items = sorted(items, key=lambda o: self.seq[o["id"]], reverse=True)  # newest first
        after, before = p.get("starting_after"), p.get("ending_before")
        for cursor, name in ((after, "starting_after"), (before, "ending_before")):
            if cursor and cursor not in self.seq:
                raise _no_such("object", cursor, name, 400)
        if after:
            rest = [o for o in items if self.seq[o["id"]] < self.seq[after]]
            page, has_more = rest[:limit], len(rest) > limit
        elif before:
            rest = [o for o in items if self.seq[o["id"]] > self.seq[before]]
            page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "data": [self._public(self._expand(o, p, "data.")) for o in page],
                "has_more": has_more, "url": url}

    def _expand(self, obj: dict, p: dict, prefix: str = "") -> dict:
        paths = p.get("expand") or []
        paths = [x[len(prefix):] for x in paths if x.startswith(prefix)]
        if not paths:
            return obj
        obj = dict(obj)
        for path in paths:
            value = obj.get(path)
            if isinstance(value, str):
                for store in self.stores.values():
                    if value in store:
                        obj[path] = store[value]
                        break
        return obj

    def _base(self, prefix: str, kind: str, **fields: Any) -> dict:
        obj = {"id": _new_id(prefix), "object": kind, "created": _now(), "livemode": False}
        obj.update(fields)
        return obj

    def _credit(self, currency: str, amount: int) -> None:
        self.balance[currency] = self.balance.get(currency, 0) + amount

    def _acct_credit(self, acct: str, currency: str, amount: int) -> None:
        bal = self.acct_balance.setdefault(acct, {})
        bal[currency] = bal.get(currency, 0) + amount

    # ---- events and webhooks
    def emit(self, etype: str, obj: dict, *, ctx: _Ctx | None = None, account: str | None = None,
             previous: dict | None = None) -> dict:
        with self.lock:
            data: dict[str, Any] = {"object": _copy(obj)}
            if previous:
                data["previous_attributes"] = previous
            event = {"id": _new_id("evt"), "object": "event", "api_version": API_VERSION,
                     "created": _now(), "data": data, "livemode": False,
                     "pending_webhooks": 1 if self.webhook_url else 0,
                     "request": {"id": ctx.request_id if ctx else None,
                                 "idempotency_key": ctx.idem_key if ctx else None},
                     "type": etype}
            if account:
                event["account"] = account
            self.events[event["id"]] = event
            self.seq.setdefault(event["id"], len(self.seq))
            self.payloads[event["id"]] = json.dumps(event, indent=2)
            self.deliveries[event["id"]] = []
            self._enqueue(event["id"])
            return event

    def _enqueue(self, evt_id: str) -> None:
        if not self.webhook_url:
            self.deliveries[evt_id].append({"status": None, "error": "no webhook_url", "at": _now()})
            return
        with self._cv:
            self._queue.append(evt_id)
            self._cv.notify_all()

    def next_webhook(self, stop: threading.Event) -> str | None:
        with self._cv:
            while not self._queue and not stop.is_set():
                self._cv.wait(0.5)
            if stop.is_set():
                return None
            self._sending += 1
            return self._queue.popleft()

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def deliver(self, evt_id: str) -> None:
        with self.lock:
            url, secret = self.webhook_url, self.webhook_secret
            payload = self.payloads.get(evt_id)
        record: dict[str, Any] = {"status": None, "error": None, "at": _now()}
        try:
            if payload is not None and url:
                headers = {"Content-Type": "application/json; charset=utf-8",
                           "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
                if secret:
                    headers["Stripe-Signature"] = sign_payload(payload, secret)
                parts = urlsplit(url)
                conn_cls = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)
                conn = conn_cls(parts.netloc, timeout=10)
                try:
                    target = parts.path or "/"
                    conn.request("POST", target + (f"?{parts.query}" if parts.query else ""),
                                 body=payload.encode(), headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    record["status"] = resp.status
                finally:
                    conn.close()
        except Exception as exc:  # the app being down is a delivery result, not a crash
            record["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            with self.lock:
                if evt_id in self.deliveries:
                    self.deliveries[evt_id].append(record)
            with self._cv:
                self._sending -= 1
                self._cv.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def event_log(self, etype: str | None = None) -> list[dict]:
        with self.lock:
            out = []
            for evt_id, event in self.events.items():
                if etype and event["type"] != etype:
                    continue
                deliveries = self.deliveries[evt_id]
                out.append({"id": evt_id, "type": event["type"], "created": event["created"],
                            "object_id": event["data"]["object"].get("id"),
                            "deliveries": list(deliveries),
                            "last_status": deliveries[-1]["status"] if deliveries else None,
                            "event": event})
            return out

    def resend(self, evt_id: str) -> dict:
        with self.lock:
            if evt_id not in self.events:
                raise _no_such("event", evt_id)
            self._enqueue(evt_id)
            return self.events[evt_id]

    def emit_custom(self, etype: str, obj: dict, account: str | None = None) -> dict:
        with self.lock:
            obj = dict(obj or {})
            kind = obj.get("object") or etype.rsplit(".", 1)[0]
            known = self.stores.get(kind, {}).get(obj.get("id", ""))
            full = {**_copy(known), **obj} if known else obj
            full.setdefault("object", kind)
            full.setdefault("id", _new_id({"payout": "po", "transfer": "tr", "account": "acct",
                                           "charge": "ch", "refund": "re"}.get(kind, "obj")))
            full.setdefault("livemode", False)
            full.setdefault("created", _now())
            return self.emit(etype, full, account=account)

    # ---- PaymentIntents
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
        charge = self._put(self._base(
            "ch", "charge", amount=pi["amount"], amount_captured=pi["amount"], amount_refunded=0,
            currency=pi["currency"], paid=True, captured=True, refunded=False,
            status="succeeded", payment_intent=pi["id"], metadata=dict(pi["metadata"]),
            description=pi["description"], balance_transaction=_new_id("txn"),
            payment_method=pi["payment_method"] or "pm_card_visa",
            transfer_group=pi.get("transfer_group")))
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"],
                  payment_method=charge["payment_method"], last_payment_error=None)
        self._credit(pi["currency"], pi["amount"])
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

    # ---- Checkout Sessions
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

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    # ---- Charges (read-only; created when a PaymentIntent succeeds)
    def charge_retrieve(self, ctx: _Ctx, p: dict, ch_id: str) -> dict:
        return self._expand(self._get("charge", ch_id), p)

    # ---- Refunds
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
            metadata=_metadata(p), balance_transaction=_new_id("txn")))
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self._credit(charge["currency"], -amount)
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
            self._credit(refund["currency"], refund["amount"])
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

    # ---- Accounts (Connect)
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

    # ---- Transfers and reversals
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
        if self.balance.get(currency, 0) < amount:
            raise StripeError(400, "You have insufficient available funds in your Stripe "
                              "account. Try adding funds directly to your available balance by "
                              "creating Charges using the 4000000000000077 test card. See: "
                              "https://stripe.com/docs/testing#available-balance",
                              code="balance_insufficient")
        tr = self._base("tr", "transfer", amount=amount, amount_reversed=0, currency=currency,
                        description=p.get("description"), destination=dest,
                        destination_payment=_new_id("py"), balance_transaction=_new_id("txn"),
                        metadata=_metadata(p), reversed=False,
                        source_transaction=p.get("source_transaction"), source_type="card",
                        transfer_group=p.get("transfer_group"))
        tr["reversals"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                           "url": f"/v1/transfers/{tr['id']}/reversals"}
        self._put(tr)
        self._credit(currency, -amount)
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
        rev = self._put(self._base("trr", "transfer_reversal", amount=amount,
                                   currency=tr["currency"], transfer=tr_id,
                                   metadata=_metadata(p), balance_transaction=_new_id("txn"),
                                   destination_payment_refund=_new_id("pyr"),
                                   source_refund=None))
        tr["amount_reversed"] += amount
        tr["reversed"] = tr["amount_reversed"] >= tr["amount"]
        tr["reversals"]["data"].insert(0, rev)
        tr["reversals"]["total_count"] += 1
        self._credit(tr["currency"], amount)
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

    # ---- Balance and events
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

    def event_retrieve(self, ctx: _Ctx, p: dict, evt_id: str) -> dict:
        event = self.events.get(evt_id)
        if event is None:
            raise _no_such("event", evt_id)
        return event

    def event_list(self, ctx: _Ctx, p: dict) -> dict:
        items = list(self.events.values())
        if p.get("type"):
            items = [e for e in items if e["type"] == p["type"]]
        return self._list(items, p, "/v1/events")

    # ---- controls: counters, stats, faults
    def transfer_counts(self) -> dict:
        with self.lock:
            return {"counts": dict(self.transfer_keys),
                    "total": len(self.stores["transfer"])}

    def expire_idempotency_keys(self) -> dict:
        """What 24 hours do at Stripe: every saved idempotency key is forgotten."""
        with self.lock:
            forgotten = len(self.idem)
            self.idem.clear()
            return {"forgotten": forgotten}

    def record_timing(self, route: str, ms: float) -> None:
        with self.lock:
            self.timings.append((route, ms))

    def request_stats(self) -> dict:
        with self.lock:
            timings = [t for t in self.timings if not t[0].split(" ", 1)[-1].startswith("/_")]

        def summary(values: list[float]) -> dict:
            if not values:
                return {"count": 0, "mean_ms": None, "median_ms": None, "max_ms": None}
            return {"count": len(values), "mean_ms": round(statistics.fmean(values), 3),
                    "median_ms": round(statistics.median(values), 3),
                    "max_ms": round(max(values), 3)}

        routes: dict[str, list[float]] = {}
        for route, ms in timings:
            routes.setdefault(route, []).append(ms)
        return {**summary([ms for _, ms in timings]),
                "by_route": {r: summary(v) for r, v in sorted(routes.items())}}

    def set_faults(self, *, drop_after_commit: int | None = None,
                   fail_before_commit: int | None = None, delay_ms: int | None = None,
                   path_prefix: str = "/v1/") -> dict:
        with self.lock:
            for kind, value in (("drop_after_commit", drop_after_commit),
                                ("fail_before_commit", fail_before_commit),
                                ("delay_ms", delay_ms)):
                if value is None:
                    continue
                if int(value) <= 0:
                    self.faults.pop(kind, None)
                else:
                    self.faults[kind] = {"value": int(value), "path_prefix": path_prefix}
            return _copy(self.faults)

    def clear_faults(self) -> dict:
        with self.lock:
            self.faults.clear()
            return {}

    def _take_fault(self, kind: str, method: str, path: str) -> bool:
        fault = self.faults.get(kind)
        if method != "POST" or not fault or not path.startswith(fault["path_prefix"]):
            return False
        fault["value"] -= 1
        if fault["value"] <= 0:
            del self.faults[kind]
        return True

    def _delay_s(self, path: str) -> float:
        fault = self.faults.get("delay_ms")
        if fault and path.startswith(fault["path_prefix"]):
            return fault["value"] / 1000
        return 0.0

    # ---- API entry point (auth, routing, idempotency, faults)
    def _auth(self, headers: Any) -> str:
        raw = headers.get("Authorization") or ""
        key = ""
        if raw.startswith("Bearer "):
            key = raw[7:].strip()
        elif raw.startswith("Basic "):
            try:
                key = base64.b64decode(raw[6:]).decode().split(":", 1)[0]
            except Exception:
                key = ""
        if not key:
            raise StripeError(401, "You did not provide an API key. You need to provide your API "
                              "key in the Authorization header, using Bearer auth.",
                              store=False)
        if not key.startswith(self.api_key_prefix):
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}",
                              type="invalid_request_error", store=False)
        return key

    def api(self, method: str, path: str, query: str, body: str, headers: Any,
            base_url: str) -> _Resp:
        request_id = f"req_{_rand(14)}"
        extra = {"Request-Id": request_id, "Stripe-Version": headers.get("Stripe-Version")
                 or API_VERSION}
        route, handler, groups = _match(method, path)
        route_name = f"{method} {route}"
        try:
            api_key = self._auth(headers)
            if handler is None:
                raise StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                                  "https://stripe.com/docs or we can help at "
                                  "https://support.stripe.com/.", store=False)
            params = parse_form(body if method == "POST" else query)
            if headers.get("Stripe-Account") and route != "/v1/balance":
                raise StripeError(400, "The stand-in only supports the Stripe-Account header "
                                  "on GET /v1/balance.", store=False)
        except StripeError as exc:
            return self._finish(exc.status, exc.body(), extra, route_name)
        idem_key = headers.get("Idempotency-Key") if method == "POST" else None
        if idem_key and len(idem_key) > 255:
            err = StripeError(400, "Idempotency-Key must be at most 255 characters long.")
            return self._finish(400, err.body(), extra, route_name)
        scope = (api_key, idem_key or "")
        ctx = _Ctx(base_url, idem_key, headers.get("Stripe-Account"), request_id)

        with self.lock:
            if idem_key:
                rec = self.idem.get(scope)
                if rec is None:
                    self.idem[scope] = {"method": method, "path": path, "params": params,
                                        "state": "in_flight", "request_id": request_id}
                else:
                    return self._idem_existing(rec, idem_key, method, path, params, extra,
                                               route_name)
            delay = self._delay_s(path)
        if delay:
            time.sleep(delay)

        with self.lock:
            if self._take_fault("fail_before_commit", method, path):
                self.idem.pop(scope, None)
                err = StripeError(500, "An unknown error occurred (stand-in fault injection: "
                                  "fail_before_commit).", type="api_error")
                return self._finish(500, err.body(), extra, route_name)
            store = True
            try:
                status, payload = 200, handler(self, ctx, params, *groups)
                payload = self._public(payload)
            except StripeError as exc:
                status, payload, store = exc.status, exc.body(), exc.store
            except Exception:
                traceback.print_exc()
                status, payload, store = 500, StripeError(
                    500, "Stand-in internal error.", type="api_error").body(), False
            resp = self._finish(status, payload, extra, route_name)
            if idem_key:
                if store:
                    self.idem[scope].update(state="done", status=status, body=resp.body)
                else:
                    self.idem.pop(scope, None)
            resp.drop = self._take_fault("drop_after_commit", method, path)
            return resp

    def _idem_existing(self, rec: dict, key: str, method: str, path: str, params: dict,
                       extra: dict, route_name: str) -> _Resp:
        if rec["state"] == "in_flight":
            err = StripeError(409, "There is currently another in-progress request using this "
                              f"Stripe Idempotency Key (that probably means you submitted twice, "
                              f"and the other request is still going through): {key}. Please "
                              "try again later.", code="idempotency_key_in_use")
            return self._finish(409, err.body(), extra, route_name)
        if (rec["method"], rec["path"]) != (method, path):
            msg = ("Keys for idempotent requests can only be used for the same endpoint they "
                   f"were first used for ('{rec['method']} {rec['path']}' vs '{method} {path}'). "
                   f"Try using a key other than '{key}' if you meant to execute a different "
                   "request.")
        elif rec["params"] != params:
            msg = ("Keys for idempotent requests can only be used with the same parameters they "
                   f"were first used with. Try using a key other than '{key}' if you meant to "
                   "execute a different request.")
        else:
            resp = _Resp(rec["status"], rec["body"], {
                "Content-Type": "application/json", **extra, "Idempotent-Replayed": "true",
                "Original-Request": rec["request_id"]}, route=route_name)
            resp.drop = self._take_fault("drop_after_commit", method, path)
            return resp
        return self._finish(400, StripeError(400, msg, type="idempotency_error").body(), extra,
                            route_name)

    @staticmethod
    def _finish(status: int, payload: Any, extra: dict, route_name: str) -> _Resp:
        resp = _json_resp(status, payload, route=route_name)
        resp.headers.update(extra)
        return resp

    # ---- controls over HTTP
    def control(self, method: str, path: str, query: str, body: str) -> _Resp:
        params: dict[str, Any] = {}
        if body.strip():
            try:
                params = json.loads(body) if body.lstrip().startswith("{") else parse_form(body)
            except ValueError:
                return _json_resp(400, StripeError(400, "Invalid JSON body").body())
        query_params = dict(parse_qsl(query))
        for pattern, verb, fn in _CONTROLS:
            m = re.fullmatch(pattern, path)
            if m and verb == method:
                route = f"{method} {pattern}"
                try:
                    result = fn(self, params, query_params, *m.groups())
                except StripeError as exc:
                    return _json_resp(exc.status, exc.body(), route=route)
                except (KeyError, TypeError, ValueError) as exc:
                    err = StripeError(400, f"Bad control request: {type(exc).__name__}: {exc}")
                    return _json_resp(400, err.body(), route=route)
                if isinstance(result, _Resp):
                    result.route = route
                    return result
                with self.lock:  # results may reference live state
                    return _json_resp(200, result, route=route)
        return _json_resp(404, StripeError(404, f"Unknown stand-in control {method} {path}").body())

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


_E = _Engine
_ROUTES: list[tuple[str, re.Pattern[str], Any, str]] = []


def _route(method: str, pattern: str, fn: Any) -> None:
    regex = re.compile(re.sub(r"\{\w+\}", r"([^/]+)", pattern))
    _ROUTES.append((method, regex, fn, pattern))


for _m, _p, _f in [
    ("POST", "/v1/payment_intents", _E.pi_create),
    ("GET", "/v1/payment_intents", _E.pi_list),
    ("GET", "/v1/payment_intents/{id}", _E.pi_retrieve),
    ("POST", "/v1/payment_intents/{id}", _E.pi_update),
    ("POST", "/v1/payment_intents/{id}/confirm", _E.pi_confirm),
    ("POST", "/v1/payment_intents/{id}/cancel", _E.pi_cancel),
    ("POST", "/v1/checkout/sessions", _E.cs_create),
    ("GET", "/v1/checkout/sessions", _E.cs_list),
    ("GET", "/v1/checkout/sessions/{id}", _E.cs_retrieve),
    ("POST", "/v1/checkout/sessions/{id}/expire", _E.cs_expire),
    ("GET", "/v1/charges/{id}", _E.charge_retrieve),
    ("POST", "/v1/refunds", _E.refund_create),
    ("GET", "/v1/refunds", _E.refund_list),
    ("GET", "/v1/refunds/{id}", _E.refund_retrieve),
    ("POST", "/v1/accounts", _E.acct_create),
    ("GET", "/v1/accounts", _E.acct_list),
    ("GET", "/v1/accounts/{id}", _E.acct_retrieve),
    ("POST", "/v1/accounts/{id}", _E.acct_update),
    ("DELETE", "/v1/accounts/{id}", _E.acct_delete),
    ("POST", "/v1/account_links", _E.link_create),
    ("POST", "/v1/transfers", _E.tr_create),
    ("GET", "/v1/transfers", _E.tr_list),
    ("GET", "/v1/transfers/{id}", _E.tr_retrieve),
    ("POST", "/v1/transfers/{id}", _E.tr_update),
    ("POST", "/v1/transfers/{id}/reversals", _E.rev_create),
    ("GET", "/v1/transfers/{id}/reversals", _E.rev_list),
    ("GET", "/v1/transfers/{id}/reversals/{rid}", _E.rev_retrieve),
    ("GET", "/v1/balance", _E.balance_retrieve),
    ("GET", "/v1/events", _E.event_list),
    ("GET", "/v1/events/{id}", _E.event_retrieve),
]:
    _route(_m, _p, _f)


def _match(method: str, path: str) -> tuple[str, Any, tuple[str, ...]]:
    for verb, regex, fn, pattern in _ROUTES:
        m = regex.fullmatch(path)
        if m and verb == method:
            return pattern, fn, m.groups()
    return path, None, ()


def _faults_ctl(e: _Engine, p: dict, q: dict) -> dict:
    allowed = {"drop_after_commit", "fail_before_commit", "delay_ms", "path_prefix"}
    unknown = set(p) - allowed
    if unknown:
        raise StripeError(400, f"Unknown fault option(s): {sorted(unknown)}")
    return e.set_faults(**{k: (v if k == "path_prefix" else int(v)) for k, v in p.items()})


def _webhook_ctl(e: _Engine, p: dict, q: dict) -> dict:
    with e.lock:
        e.webhook_url = p.get("url") or None
        e.webhook_secret = p.get("secret") or None
        return {"url": e.webhook_url, "secret_set": bool(e.webhook_secret)}


def _reset_ctl(e: _Engine, p: dict, q: dict) -> dict:
    e.reset()
    return {"reset": True}


_CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/health", "GET", lambda e, p, q: {"ok": True}),
    (r"/_standin/payment_intents/([^/]+)/succeed", "POST",
     lambda e, p, q, i: e.succeed_payment_intent(i)),
    (r"/_standin/payment_intents/([^/]+)/fail", "POST",
     lambda e, p, q, i: e.fail_payment_intent(i, p.get("code", "card_declined"))),
    (r"/_standin/refunds/([^/]+)/fail", "POST",
     lambda e, p, q, i: e.fail_refund(i, p.get("reason", "expired_or_canceled_card"))),
    (r"/_standin/checkout/sessions/([^/]+)/complete", "POST",
     lambda e, p, q, i: e.complete_and_redirect(i, bool(q.get("redirect")))),
    (r"/_standin/checkout/sessions/([^/]+)/expire", "POST",
     lambda e, p, q, i: e.expire_checkout_session(i)),
    (r"/_standin/checkout/([^/]+)", "GET", lambda e, p, q, i: e.checkout_page(i)),
    (r"/_standin/accounts/([^/]+)/ready", "POST", lambda e, p, q, i: e.set_account_ready(i, True)),
    (r"/_standin/accounts/([^/]+)/not_ready", "POST",
     lambda e, p, q, i: e.set_account_ready(i, False)),
    (r"/_standin/onboard/([^/]+)", "GET", lambda e, p, q, i: e.onboard(i, q.get("link"))),
    (r"/_standin/transfers/counts", "GET", lambda e, p, q: e.transfer_counts()),
    (r"/_standin/idempotency_keys/expire", "POST", lambda e, p, q: e.expire_idempotency_keys()),
    (r"/_standin/requests", "GET", lambda e, p, q: e.request_stats()),
    (r"/_standin/faults", "GET", lambda e, p, q: e.set_faults()),
    (r"/_standin/faults", "POST", _faults_ctl),
    (r"/_standin/faults", "DELETE", lambda e, p, q: e.clear_faults()),
    (r"/_standin/balance", "POST",
     lambda e, p, q: e.set_balance(int(p["amount"]), p.get("currency", "usd"))),
    (r"/_standin/events", "GET", lambda e, p, q: {"data": e.event_log(q.get("type"))}),
    (r"/_standin/events", "POST",
     lambda e, p, q: e.emit_custom(p["type"], p.get("object") or {}, p.get("account"))),
    (r"/_standin/events/flush", "POST",
     lambda e, p, q: {"idle": e.wait_idle(float(p.get("timeout", 5)))}),
    (r"/_standin/events/([^/]+)/resend", "POST", lambda e, p, q, i: e.resend(i)),
    (r"/_standin/webhook", "POST", _webhook_ctl),
    (r"/_standin/reset", "POST", _reset_ctl),
]


# --------------------------------------------------------------------------- HTTP layer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.stripe.com
    server_version = "StripeStandIn/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        start = time.perf_counter()
        engine = self.server.engine
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.port}"
        try:
            if path.startswith("/_standin/"):
                resp = engine.control(method, path, split.query, body)
            elif path.startswith("/v1/"):
                resp = engine.api(method, path, split.query, body, self.headers, f"http://{host}")
            else:
                resp = _json_resp(404, StripeError(404, f"Unrecognized request URL ({method}: "
                                                   f"{path}).").body(), route=path)
        except Exception:
            traceback.print_exc()
            resp = _json_resp(500, StripeError(500, "Stand-in internal error.",
                                               type="api_error").body())
        ms = (time.perf_counter() - start) * 1000
        engine.record_timing(resp.route, ms)
        if resp.drop:  # "did it go through?": committed, but the client never hears back
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._log(method, path, "DROPPED", ms)
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(resp.body)
        self._log(method, path, str(resp.status), ms)

    def _log(self, method: str, path: str, status: str, ms: float) -> None:
        # path only (no query, no headers): API keys and webhook secrets never reach the log
        if self.server.verbose:
            sys.stderr.write(f"standin {method} {path} -> {status} ({ms:.1f} ms)\n")

    def log_message(self, format: str, *args: Any) -> None:  # silence default access log
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], engine: _Engine, verbose: bool):
        self.engine, self.verbose = engine, verbose
        super().__init__(addr, _Handler)
        self.port = self.server_address[1]


# --------------------------------------------------------------------------- public API


class StripeStandIn:
    """The stand-in server: ``start()`` it, point ``StripeClient`` at ``.url``, drive it with
    the control methods below (mirrors of the ``/_standin/…`` HTTP controls)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, webhook_url: str | None = None,
                 webhook_secret: str | None = None, api_key_prefix: str = "sk_test_",
                 initial_balance: int = 1_000_000_000, verbose: bool = False):
        self.host, self.port, self.verbose = host, port, verbose
        self.engine = _Engine(api_key_prefix=api_key_prefix, initial_balance=initial_balance,
                              webhook_url=webhook_url, webhook_secret=webhook_secret)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> StripeStandIn:
        self._server = _Server((self.host, self.port), self.engine, self.verbose)
        self.port = self._server.port
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                             name="stripe-standin-http", daemon=True),
            threading.Thread(target=self._webhook_loop, name="stripe-standin-webhooks",
                             daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def _webhook_loop(self) -> None:
        while not self._stop.is_set():
            evt_id = self.engine.next_webhook(self._stop)
            if evt_id is not None:
                self.engine.deliver(evt_id)

    def serve_forever(self) -> None:
        """Foreground mode (CLI): block until Ctrl-C, then stop."""
        if self._server is None:
            self.start()
        try:
            while self._threads[0].is_alive():
                self._threads[0].join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop.set()
        self.engine.wake()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._server = None

    def __enter__(self) -> StripeStandIn:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- controls (same semantics as the HTTP endpoints)
    def succeed_payment_intent(self, pi_id: str) -> dict:
        return _copy(self.engine.succeed_payment_intent(pi_id))

    def fail_payment_intent(self, pi_id: str, code: str = "card_declined") -> dict:
        return _copy(self.engine.fail_payment_intent(pi_id, code))

    def fail_refund(self, re_id: str, reason: str = "expired_or_canceled_card") -> dict:
        return _copy(self.engine.fail_refund(re_id, reason))

    def complete_checkout_session(self, cs_id: str) -> dict:
        return _copy(self.engine.complete_checkout_session(cs_id))

    def expire_checkout_session(self, cs_id: str) -> dict:
        return _copy(self.engine.expire_checkout_session(cs_id))

    def set_account_ready(self, acct_id: str, ready: bool = True) -> dict:
        return _copy(self.engine.set_account_ready(acct_id, ready))

    def transfer_counts(self) -> dict:
        return self.engine.transfer_counts()

    def expire_idempotency_keys(self) -> dict:
        return self.engine.expire_idempotency_keys()

    def set_faults(self, *, drop_after_commit: int | None = None,
                   fail_before_commit: int | None = None, delay_ms: int | None = None,
                   path_prefix: str = "/v1/") -> dict:
        return self.engine.set_faults(drop_after_commit=drop_after_commit,
                                      fail_before_commit=fail_before_commit,
                                      delay_ms=delay_ms, path_prefix=path_prefix)

    def clear_faults(self) -> None:
        self.engine.clear_faults()

    def set_balance(self, amount: int, currency: str = "usd") -> dict:
        return self.engine.set_balance(amount, currency)

    def balance(self, currency: str = "usd") -> int:
        with self.engine.lock:
            return self.engine.balance.get(currency, 0)

    def emit_event(self, type: str, obj: dict | None = None, *, account: str | None = None) -> dict:
        return _copy(self.engine.emit_custom(type, obj or {}, account))

    def resend_event(self, evt_id: str) -> dict:
        return _copy(self.engine.resend(evt_id))

    def events(self, type: str | None = None) -> list[dict]:
        return _copy(self.engine.event_log(type))

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        return self.engine.wait_idle(timeout)

    def set_webhook(self, url: str | None, secret: str | None) -> None:
        _webhook_ctl(self.engine, {"url": url, "secret": secret}, {})

    def reset(self) -> None:
        self.engine.reset()

    def request_stats(self) -> dict:
        return self.engine.request_stats()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_standin",
                                     description="Local Stripe stand-in (API subset + webhooks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    parser.add_argument("--api-key-prefix", default="sk_test_")
    parser.add_argument("--initial-balance", type=int, default=1_000_000_000)
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    standin = StripeStandIn(args.host, args.port, webhook_url=args.webhook_url,
                            webhook_secret=args.webhook_secret,
                            api_key_prefix=args.api_key_prefix,
                            initial_balance=args.initial_balance, verbose=not args.quiet)
    standin.start()
    webhook = f", webhooks -> {args.webhook_url}" if args.webhook_url else ""
    sys.stderr.write(f"stripe stand-in listening on {standin.url}{webhook}\n")
    sys.stderr.flush()
    standin.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["StripeError", "StripeStandIn", "parse_form", "sign_payload"]
