"""Stripe's wire protocol as every resource sees it: form-encoded parameters and their rules,
the Stripe-shaped error, the per-request context and the response a handler hands back."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

try:  # the events carry the API version the installed library pins
    from stripe._api_version import _ApiVersion

    API_VERSION = _ApiVersion.CURRENT
except Exception:  # pragma: no cover - stripe is a project dependency
    API_VERSION = "2025-01-27.acacia"

_DOCS = "https://stripe.com/docs/error-codes/"


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


# The currencies Stripe charges and pays in (https://docs.stripe.com/currencies).
CURRENCIES = frozenset("""
usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn bzd cad
cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd
hnl htg huf idr ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd
mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln pyg qar ron rsd
rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs top try ttd twd tzs uah ugx uyu uzs vnd
vuv wst xaf xcd xof xpf yer zar zmw""".split())


def _currency(p: dict, name: str = "currency") -> str:
    cur = str(_required(p, name)).lower()
    if cur not in CURRENCIES:
        raise _invalid(name, f"Invalid currency: {cur}. Stripe currently supports these currencies: "
                       + ", ".join(sorted(CURRENCIES)), "invalid_currency" if re.fullmatch(r"[a-z]{3}", cur)
                       else "parameter_invalid_string")
    return cur


# Each route's parameters, as the stripe library's own typed params name them (the library is
# generated from Stripe's OpenAPI description); a name outside them is refused as Stripe does.
_PARAMS_OF = {
    ("POST", "/v1/payment_intents"): "PaymentIntentCreateParams",
    ("GET", "/v1/payment_intents"): "PaymentIntentListParams",
    ("GET", "/v1/payment_intents/{id}"): "PaymentIntentRetrieveParams",
    ("POST", "/v1/payment_intents/{id}"): "PaymentIntentUpdateParams",
    ("POST", "/v1/payment_intents/{id}/confirm"): "PaymentIntentConfirmParams",
    ("POST", "/v1/payment_intents/{id}/cancel"): "PaymentIntentCancelParams",
    ("GET", "/v1/charges/{id}"): "ChargeRetrieveParams",
    ("POST", "/v1/refunds"): "RefundCreateParams",
    ("GET", "/v1/refunds"): "RefundListParams",
    ("GET", "/v1/refunds/{id}"): "RefundRetrieveParams",
    ("POST", "/v1/accounts"): "AccountCreateParams",
    ("GET", "/v1/accounts"): "AccountListParams",
    ("GET", "/v1/accounts/{id}"): "AccountRetrieveParams",
    ("POST", "/v1/accounts/{id}"): "AccountUpdateParams",
    ("POST", "/v1/account_links"): "AccountLinkCreateParams",
    ("POST", "/v1/transfers"): "TransferCreateParams",
    ("GET", "/v1/transfers"): "TransferListParams",
    ("GET", "/v1/transfers/{id}"): "TransferRetrieveParams",
    ("POST", "/v1/transfers/{id}"): "TransferUpdateParams",
    ("POST", "/v1/transfers/{id}/reversals"): "TransferCreateReversalParams",
    ("GET", "/v1/transfers/{id}/reversals"): "TransferListReversalsParams",
    ("GET", "/v1/balance"): "BalanceRetrieveParams",
    ("GET", "/v1/balance_transactions"): "BalanceTransactionListParams",
    ("GET", "/v1/balance_transactions/{id}"): "BalanceTransactionRetrieveParams",
    ("GET", "/v1/events"): "EventListParams",
    ("GET", "/v1/events/{id}"): "EventRetrieveParams",
    ("POST", "/v1/checkout/sessions"): "checkout.SessionCreateParams",
}
# Request options the library's older params classes mix in: headers, never form fields.
_REQUEST_OPTIONS = {"api_key", "content_type", "headers", "idempotency_key", "max_network_retries",
                    "stripe_account", "stripe_context", "stripe_version"}
_known: dict[tuple[str, str], frozenset[str] | None] = {}


def _parameters(method: str, route: str) -> frozenset[str] | None:
    key = (method, route)
    if key not in _known:
        names = None
        try:
            import importlib

            module, _, cls = ("stripe.params." + _PARAMS_OF[key]).rpartition(".")
            names = frozenset(getattr(importlib.import_module(module), cls).__annotations__) - _REQUEST_OPTIONS
        except (KeyError, ImportError, AttributeError):
            names = None  # a route not mapped (or an old library): not checked
        _known[key] = names
    return _known[key]


def unknown_parameter(method: str, route: str, params: dict) -> None:
    """Stripe answers 400 parameter_unknown for a name the endpoint does not take."""
    known = _parameters(method, route)
    if known is None:
        return
    for name in params:
        if name not in known:
            raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown",
                              param=name, store=False)


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


def _finish(status: int, payload: Any, extra: dict, route_name: str) -> _Resp:
    resp = _json_resp(status, payload, route=route_name)
    resp.headers.update(extra)
    return resp


class _Ctx:
    """Per-request context handed to resource handlers."""

    def __init__(self, base_url: str, idem_key: str | None, account: str | None, request_id: str):
        self.base_url, self.idem_key, self.account, self.request_id = (
            base_url, idem_key, account, request_id)
