"""Proof checks as pure functions: the CheckResult every check returns, and its outcomes.

The checks in this package never touch the database, the queue or the clock; the
background jobs feed them facts (bytes, URLs, times, earlier hashes) and store what
comes back. One module per check: screenshot, timestamp, link, text.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

PASS = "pass"
FAIL = "fail"
WARN = "warn"
OUTCOMES = (PASS, FAIL, WARN)
# Every name a stored check row can have ('validation' marks a submission handed to a person
# after its validation gave up).
CHECK_NAMES = ("screenshot", "duplicate", "timestamp", "link", "text", "prohibited", "disclosure",
               "near_copy", "validation")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one proof.

    ``detail`` is shown verbatim to workers and reviewers, so it names the problem in
    plain words; ``data`` carries the machine-readable facts behind it (JSON-safe
    values only: str, int, float, bool, None, lists and dicts of those).
    """

    name: str
    outcome: str
    detail: str
    # hash=False keeps the frozen result hashable although a dict is not.
    data: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown check outcome {self.outcome!r}")

    def to_dict(self) -> dict[str, Any]:
        # A deep copy: callers serialise or mutate it without reaching into the result.
        return {
            "name": self.name,
            "outcome": self.outcome,
            "detail": self.detail,
            "data": copy.deepcopy(self.data),
        }


__all__ = ["FAIL", "OUTCOMES", "PASS", "WARN", "CheckResult"]
