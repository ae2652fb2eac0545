"""Events and webhooks: every event a resource emits, the signed deliveries (sent from a background
thread, each attempt logged), resends and custom events.

As at Stripe, an event of a connected account (one with ``account``: ``account.updated``,
``payout.failed``…) goes to the Connect endpoint, signed with its own secret, and the platform's own
events to the platform endpoint. Delivery is at least once, and ``set_delivery`` turns on what live
Stripe sometimes does: each event twice, several at once, newest first.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from stripe_standin.protocol import API_VERSION, _Ctx, _no_such
from stripe_standin.store import Store, _copy, _new_id, _now


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` header value, as Stripe computes it (same as stripe-python's
    ``WebhookSignature.generate_signature_header``)."""
    ts = _now() if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


class Events(Store):
    def emit(self, etype: str, obj: dict, *, ctx: _Ctx | None = None, account: str | None = None,
             previous: dict | None = None) -> dict:
        with self.lock:
            data: dict[str, Any] = {"object": _copy(obj)}
            if previous:
                data["previous_attributes"] = previous
            event = {"id": _new_id("evt"), "object": "event", "api_version": API_VERSION,
                     "created": _now(), "data": data, "livemode": False,
                     "pending_webhooks": 1 if self._endpoint(account)[0] else 0,
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

    def _endpoint(self, account: str | None) -> tuple[str | None, str | None]:
        """(url, secret) an event goes to: the Connect endpoint for a connected account's."""
        if account:
            return self.connect_webhook_url, self.connect_webhook_secret
        return self.webhook_url, self.webhook_secret

    def _enqueue(self, evt_id: str) -> None:
        if not self._endpoint(self.events[evt_id].get("account"))[0]:
            which = "connect_webhook_url" if self.events[evt_id].get("account") else "webhook_url"
            self.deliveries[evt_id].append({"status": None, "error": f"no {which}", "at": _now()})
            return
        with self._cv:
            self._queue.append(evt_id)
            if self.delivery["duplicate"]:
                self._queue.append(evt_id)
            self._cv.notify_all()

    def set_delivery(self, *, duplicate: bool | None = None, concurrent: bool | None = None,
                     out_of_order: bool | None = None) -> dict:
        with self.lock:
            for name, value in (("duplicate", duplicate), ("concurrent", concurrent),
                                ("out_of_order", out_of_order)):
                if value is not None:
                    self.delivery[name] = bool(value)
            return dict(self.delivery)

    def next_webhook(self, stop: threading.Event) -> str | None:
        with self._cv:
            while not self._queue and not stop.is_set():
                self._cv.wait(0.5)
            if stop.is_set():
                return None
            if self.delivery["out_of_order"]:
                # Let the events of one burst gather, then send the newest first.
                self._cv.wait(0.05)
                self._sending += 1
                return self._queue.pop()
            self._sending += 1
            return self._queue.popleft()

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def deliver(self, evt_id: str) -> None:
        with self.lock:
            event = self.events.get(evt_id) or {}
            url, secret = self._endpoint(event.get("account"))
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


def _webhook_ctl(e: Events, p: dict, q: dict) -> dict:
    with e.lock:
        e.webhook_url = p.get("url") or None
        e.webhook_secret = p.get("secret") or None
        if "connect_url" in p:
            e.connect_webhook_url = p.get("connect_url") or None
            e.connect_webhook_secret = p.get("connect_secret") or None
        return {"url": e.webhook_url, "secret_set": bool(e.webhook_secret),
                "connect_url": e.connect_webhook_url, "connect_secret_set": bool(e.connect_webhook_secret)}


def _delivery_ctl(e: Events, p: dict, q: dict) -> dict:
    unknown = set(p) - {"duplicate", "concurrent", "out_of_order"}
    if unknown:
        raise ValueError(f"unknown delivery option(s): {sorted(unknown)}")
    return e.set_delivery(**{k: str(v).lower() in ("1", "true") for k, v in p.items()})


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/events", Events.event_list),
    ("GET", "/v1/events/{id}", Events.event_retrieve),
]

CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/events", "GET", lambda e, p, q: {"data": e.event_log(q.get("type"))}),
    (r"/_standin/events", "POST",
     lambda e, p, q: e.emit_custom(p["type"], p.get("object") or {}, p.get("account"))),
    (r"/_standin/events/flush", "POST",
     lambda e, p, q: {"idle": e.wait_idle(float(p.get("timeout", 5)))}),
    (r"/_standin/events/([^/]+)/resend", "POST", lambda e, p, q, i: e.resend(i)),
    (r"/_standin/webhook", "POST", _webhook_ctl),
    (r"/_standin/webhook/delivery", "POST", _delivery_ctl),
]
