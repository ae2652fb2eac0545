"""Time in tests: RFC 3339 stamps, and waiting for what arrives asynchronously (webhooks, jobs)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until predicate() is truthy (webhooks and jobs arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours_from_now(hours: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(hours=hours))
