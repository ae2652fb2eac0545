"""Fault injection: a delay, a failure before the commit, or a connection dropped after it,
for the next POSTs under a path prefix."""

from __future__ import annotations

from typing import Any

from stripe_standin.protocol import StripeError
from stripe_standin.store import Store, _copy


class Faults(Store):
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


def _faults_ctl(e: Faults, p: dict, q: dict) -> dict:
    allowed = {"drop_after_commit", "fail_before_commit", "delay_ms", "path_prefix"}
    unknown = set(p) - allowed
    if unknown:
        raise StripeError(400, f"Unknown fault option(s): {sorted(unknown)}")
    return e.set_faults(**{k: (v if k == "path_prefix" else int(v)) for k, v in p.items()})


CONTROLS: list[tuple[str, str, Any]] = [
    (r"/_standin/faults", "GET", lambda e, p, q: e.set_faults()),
    (r"/_standin/faults", "POST", _faults_ctl),
    (r"/_standin/faults", "DELETE", lambda e, p, q: e.clear_faults()),
]
