"""The stand-in's state: every object it holds, the one lock over all of it, and the storage,
listing and expansion rules every resource shares."""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from collections import deque
from typing import Any

from stripe_standin.protocol import _int, _invalid, _no_such

_ALNUM = string.ascii_letters + string.digits


def _now() -> int:
    return int(time.time())


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_rand(24)}"


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


class Store:
    """All state; the resource mixins add the behaviour. Every public entry point takes
    ``self.lock``."""

    def __init__(self, *, api_key_prefix: str, initial_balance: int,
                 webhook_url: str | None, webhook_secret: str | None,
                 connect_webhook_url: str | None = None, connect_webhook_secret: str | None = None,
                 availability_days: int = 2):
        self.lock = threading.RLock()
        self.api_key_prefix = api_key_prefix
        self.initial_balance = initial_balance
        self.availability_days = availability_days
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        # Stripe sends events of connected accounts to Connect endpoints only, signed with theirs.
        self.connect_webhook_url, self.connect_webhook_secret = connect_webhook_url, connect_webhook_secret
        # How deliveries behave: each one twice, several at once, newest first (off: once, in order).
        self.delivery = {"duplicate": False, "concurrent": False, "out_of_order": False}
        self._cv = threading.Condition(threading.Lock())  # webhook queue
        self._queue: deque[str] = deque()
        self._sending = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.stores: dict[str, dict[str, dict]] = {
                k: {} for k in ("payment_intent", "checkout.session", "charge", "refund",
                                "account", "account_link", "transfer", "transfer_reversal",
                                "balance_transaction")}
            self.seq: dict[str, int] = {}  # id -> insertion order, for list cursors
            self.clock_offset = 0  # seconds the tests moved the stand-in's clock forward
            self.acct_balance: dict[str, dict[str, int]] = {}
            self.idem: dict[tuple[str, str], dict[str, Any]] = {}
            self.transfer_keys: dict[str, int] = {}
            self.faults: dict[str, dict[str, Any]] = {}
            self.events: dict[str, dict[str, Any]] = {}
            self.payloads: dict[str, str] = {}
            self.deliveries: dict[str, list[dict[str, Any]]] = {}
            self.timings: list[tuple[str, float]] = []
            self.delivery = {"duplicate": False, "concurrent": False, "out_of_order": False}
            if self.initial_balance:  # an opening balance only when asked for: live starts at zero
                self._txn("adjustment", self.initial_balance, "usd", None, description="opening balance")
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
        for path in paths:
            obj = self._expand_path(obj, path.split("."))
        return obj

    def _expand_path(self, obj: dict, parts: list[str]) -> dict:
        """Replace the id at ``parts[0]`` by its object, then go on inside it (``a.b.c``)."""
        value = obj.get(parts[0])
        if isinstance(value, str):
            for store in self.stores.values():
                if value in store:
                    value = self._public(store[value])
                    if value["object"] == "balance_transaction":  # its status is as of now
                        value = self._with_status(value)
                    break
        if isinstance(value, dict):
            if len(parts) > 1:
                value = self._expand_path(value, parts[1:])
            obj = {**obj, parts[0]: value}
        return obj

    def _base(self, prefix: str, kind: str, **fields: Any) -> dict:
        obj = {"id": _new_id(prefix), "object": kind, "created": _now(), "livemode": False}
        obj.update(fields)
        return obj

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}
