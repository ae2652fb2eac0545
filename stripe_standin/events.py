"""Events and webhooks: every event a resource emits, the signed deliveries to the webhook URL
(sent from a background thread, each attempt logged), resends and custom events."""

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
        return {"url": e.webhook_url, "secret_set": bool(e.webhook_secret)}


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
]
