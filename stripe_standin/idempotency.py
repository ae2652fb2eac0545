"""Stripe's Idempotency-Key rules: a key is taken while its request runs, replays the saved
result afterwards, refuses another endpoint or other parameters, and is forgotten after 24 hours."""

from __future__ import annotations

from typing import Any

from stripe_standin.faults import Faults
from stripe_standin.protocol import StripeError, _finish, _Resp


class Idempotency(Faults):
    def _idem_begin(self, scope: tuple[str, str], key: str, method: str, path: str, params: dict,
                    request_id: str, extra: dict, route_name: str) -> _Resp | None:
        """Take the key for this request, or answer it from what the key already holds."""
        rec = self.idem.get(scope)
        if rec is None:
            self.idem[scope] = {"method": method, "path": path, "params": params,
                                "state": "in_flight", "request_id": request_id}
            return None
        return self._idem_existing(rec, key, method, path, params, extra, route_name)

    def _idem_forget(self, scope: tuple[str, str]) -> None:
        self.idem.pop(scope, None)

    def _idem_settle(self, scope: tuple[str, str], store: bool, resp: _Resp) -> None:
        """Stripe saves a result once the endpoint began executing, not a validation failure."""
        if store:
            self.idem[scope].update(state="done", status=resp.status, body=resp.body)
        else:
            self.idem.pop(scope, None)

    def _idem_existing(self, rec: dict, key: str, method: str, path: str, params: dict,
                       extra: dict, route_name: str) -> _Resp:
        if rec["state"] == "in_flight":
            err = StripeError(409, "There is currently another in-progress request using this "
                              f"Stripe Idempotency Key (that probably means you submitted twice, "
                              f"and the other request is still going through): {key}. Please "
                              "try again later.", code="idempotency_key_in_use")
            return _finish(409, err.body(), extra, route_name)
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
        return _finish(400, StripeError(400, msg, type="idempotency_error").body(), extra,
                       route_name)

    def expire_idempotency_keys(self) -> dict:
        """What 24 hours do at Stripe: every saved idempotency key is forgotten."""
        with self.lock:
            forgotten = len(self.idem)
            self.idem.clear()
            return {"forgotten": forgotten}


CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/idempotency_keys/expire", "POST", lambda e, p, q: e.expire_idempotency_keys()),
]
