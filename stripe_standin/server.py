"""The stand-in server: the HTTP layer, authentication, routing of ``/v1/…`` to the resources
and ``/_standin/…`` to their test controls, and :class:`StripeStandIn`, which runs it."""

from __future__ import annotations

import base64
import json
import re
import socket
import statistics
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stripe_standin import (
    accounts,
    balance,
    checkout,
    events,
    faults,
    idempotency,
    payment_intents,
    refunds,
    transfers,
)
from stripe_standin.accounts import Accounts
from stripe_standin.balance import Balance
from stripe_standin.checkout import CheckoutSessions
from stripe_standin.events import Events, _webhook_ctl
from stripe_standin.faults import Faults
from stripe_standin.idempotency import Idempotency
from stripe_standin.payment_intents import PaymentIntents
from stripe_standin.protocol import (
    API_VERSION,
    StripeError,
    _Ctx,
    _finish,
    _json_resp,
    _Resp,
    parse_form,
    unknown_parameter,
)
from stripe_standin.refunds import Refunds
from stripe_standin.store import _copy, _rand
from stripe_standin.transfers import Transfers

# --------------------------------------------------------------------------- engine


class _Engine(Idempotency, Faults, CheckoutSessions, PaymentIntents, Refunds, Accounts, Transfers,
              Balance, Events):
    """Every resource over the one state store, and the two entry points the HTTP layer calls
    (``api`` for ``/v1/…``, ``control`` for ``/_standin/…``)."""

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
            unknown_parameter(method, route, params)
            if headers.get("Stripe-Account") and route != "/v1/balance":
                raise StripeError(400, "The stand-in only supports the Stripe-Account header "
                                  "on GET /v1/balance.", store=False)
        except StripeError as exc:
            return _finish(exc.status, exc.body(), extra, route_name)
        idem_key = headers.get("Idempotency-Key") if method == "POST" else None
        if idem_key and len(idem_key) > 255:
            err = StripeError(400, "Idempotency-Key must be at most 255 characters long.")
            return _finish(400, err.body(), extra, route_name)
        scope = (api_key, idem_key or "")
        ctx = _Ctx(base_url, idem_key, headers.get("Stripe-Account"), request_id)

        with self.lock:
            if idem_key:
                answered = self._idem_begin(scope, idem_key, method, path, params, request_id,
                                            extra, route_name)
                if answered is not None:
                    return answered
            delay = self._delay_s(path)
        if delay:
            time.sleep(delay)

        with self.lock:
            if self._take_fault("fail_before_commit", method, path):
                err = StripeError(500, "An unknown error occurred (stand-in fault injection: "
                                  "fail_before_commit).", type="api_error")
                resp = _finish(500, err.body(), extra, route_name)
                if idem_key:  # Stripe saves a 500 too: the same key replays it for 24 hours
                    self._idem_settle(scope, True, resp)
                return resp
            store = True
            try:
                status, payload = 200, handler(self, ctx, params, *groups)
                payload = self._public(payload)
            except StripeError as exc:
                status, payload, store = exc.status, exc.body(), exc.store
            except Exception:
                traceback.print_exc()
                status, payload, store = 500, StripeError(
                    500, "Stand-in internal error.", type="api_error").body(), True
            resp = _finish(status, payload, extra, route_name)
            if idem_key:
                self._idem_settle(scope, store, resp)
            resp.drop = self._take_fault("drop_after_commit", method, path)
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


_ROUTES: list[tuple[str, re.Pattern[str], Any, str]] = []


def _route(method: str, pattern: str, fn: Any) -> None:
    regex = re.compile(re.sub(r"\{\w+\}", r"([^/]+)", pattern))
    _ROUTES.append((method, regex, fn, pattern))


for _m, _p, _f in (payment_intents.ROUTES + checkout.ROUTES + refunds.ROUTES + accounts.ROUTES
                   + transfers.ROUTES + balance.ROUTES + events.ROUTES):
    _route(_m, _p, _f)


def _match(method: str, path: str) -> tuple[str, Any, tuple[str, ...]]:
    for verb, regex, fn, pattern in _ROUTES:
        m = regex.fullmatch(path)
        if m and verb == method:
            return pattern, fn, m.groups()
    return path, None, ()


def _reset_ctl(e: _Engine, p: dict, q: dict) -> dict:
    e.reset()
    return {"reset": True}


_CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/health", "GET", lambda e, p, q: {"ok": True}),
    *payment_intents.CONTROLS, *refunds.CONTROLS, *checkout.CONTROLS, *accounts.CONTROLS,
    *transfers.CONTROLS, *idempotency.CONTROLS,
    (r"/_standin/requests", "GET", lambda e, p, q: e.request_stats()),
    *faults.CONTROLS, *balance.CONTROLS, *events.CONTROLS,
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
                 webhook_secret: str | None = None, connect_webhook_url: str | None = None,
                 connect_webhook_secret: str | None = None, api_key_prefix: str = "sk_test_",
                 initial_balance: int = 0, availability_days: int = 2, verbose: bool = False):
        self.host, self.port, self.verbose = host, port, verbose
        self.engine = _Engine(api_key_prefix=api_key_prefix, initial_balance=initial_balance,
                              webhook_url=webhook_url, webhook_secret=webhook_secret,
                              connect_webhook_url=connect_webhook_url,
                              connect_webhook_secret=connect_webhook_secret,
                              availability_days=availability_days)
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
            if evt_id is None:
                continue
            if self.engine.delivery["concurrent"]:  # several in flight at once, as Stripe does
                threading.Thread(target=self.engine.deliver, args=(evt_id,), daemon=True,
                                 name="stripe-standin-delivery").start()
            else:
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
        """The available balance (what a transfer can spend now)."""
        return self.engine.balance_totals(currency)["available"]

    def balance_totals(self, currency: str = "usd") -> dict[str, int]:
        """{"available": …, "pending": …} of the platform's balance."""
        return self.engine.balance_totals(currency)

    def advance_time(self, seconds: int = 0, *, days: int = 0) -> dict:
        return self.engine.advance_time(int(seconds) + int(days) * 86_400)

    def make_funds_available(self) -> dict:
        return self.engine.make_funds_available()

    def set_delivery(self, *, duplicate: bool | None = None, concurrent: bool | None = None,
                     out_of_order: bool | None = None) -> dict:
        """How webhooks are delivered: each event twice, several at once, newest first."""
        return self.engine.set_delivery(duplicate=duplicate, concurrent=concurrent, out_of_order=out_of_order)

    def emit_event(self, type: str, obj: dict | None = None, *, account: str | None = None) -> dict:
        return _copy(self.engine.emit_custom(type, obj or {}, account))

    def resend_event(self, evt_id: str) -> dict:
        return _copy(self.engine.resend(evt_id))

    def events(self, type: str | None = None) -> list[dict]:
        return _copy(self.engine.event_log(type))

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        return self.engine.wait_idle(timeout)

    def set_webhook(self, url: str | None, secret: str | None, *, connect_url: str | None = None,
                    connect_secret: str | None = None) -> None:
        _webhook_ctl(self.engine, {"url": url, "secret": secret, "connect_url": connect_url,
                                   "connect_secret": connect_secret}, {})

    def reset(self) -> None:
        self.engine.reset()

    def request_stats(self) -> dict:
        return self.engine.request_stats()

