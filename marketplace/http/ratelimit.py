"""Rate limits (claims and submissions per worker, logins and sign-ups per e-mail and per client
address): a sliding window in Redis, in-process without it or while it is down."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, current_app

from marketplace.errors import RateLimited

log = logging.getLogger(__name__)

# Seconds in each unit a rate may be written in: "30/minute", "20/min", "5/10s", "1000/hour".
UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
         "d": 86400, "day": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")
# After Redis fails, requests skip it for this long, so an outage costs one timeout, not one per request.
REDIS_RETRY_AFTER_FAILURE_SECONDS = 5.0
# Short timeouts: a limiter that waits seconds on a sick Redis is worse than none.
REDIS_TIMEOUT_SECONDS = 0.5

# A sliding log: one sorted-set member per allowed call, scored by Redis's own clock (so app
# servers with skewed clocks agree). Old members are trimmed, refused calls are not recorded
# (a worker hammering a closed door does not push the door further away), and the answer is
# either allowed, or refused with the microseconds until the oldest call leaves the window.
SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local max_calls = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
if redis.call('ZCARD', key) >= max_calls then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window_us - now}
end
redis.call('ZADD', key, now, ARGV[3])
redis.call('PEXPIRE', key, math.ceil(window_us / 1000))
return {1, 0}
"""


@dataclass(frozen=True)
class Rate:
    max_calls: int
    per_seconds: int


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate | None:
    """'30/minute' → Rate(30, 60); 'off' or '' → None (no limit). Anything else is a config error."""
    if text is None or text.strip().lower() in ("", "off", "none"):
        return None
    match = RATE_RE.match(text.lower())
    if not match or match.group(3) not in UNITS:
        raise ValueError(f"Not a rate: {text!r}; write it like '30/minute', '5/10s' or 'off'.")
    count, multiple, unit = match.groups()
    if int(count) < 1 or int(multiple or 1) < 1:
        raise ValueError(f"Not a rate: {text!r}; at least one call in at least one unit (or 'off').")
    return Rate(int(count), int(multiple or 1) * UNITS[unit])


class _LocalWindows:
    """The same sliding log in this process's memory, for running without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[int, deque[float]]] = {}  # key → (window seconds, call times)

    def hit(self, key: str, max_calls: int, per_seconds: int) -> float:
        """0 when allowed (and recorded), else seconds until a call would be allowed."""
        now = time.monotonic()
        with self._lock:
            _, calls = self._calls.setdefault(key, (per_seconds, deque()))
            while calls and calls[0] <= now - per_seconds:
                calls.popleft()
            if len(calls) >= max_calls:
                return calls[0] + per_seconds - now
            calls.append(now)
            self._calls[key] = (per_seconds, calls)
            if len(self._calls) > 100_000:  # bound memory: forget keys whose windows have emptied
                for stale in [k for k, (window, v) in self._calls.items() if not v or v[-1] <= now - window]:
                    del self._calls[stale]
            return 0.0


def _state(app: Flask) -> dict:
    return app.extensions.setdefault("ratelimit", {"local": _LocalWindows(), "script": None,
                                                   "skip_redis_until": 0.0})


def _redis(app: Flask, state: dict):
    """The sliding-window script on a Redis client, made on first use. Threads may race to make it:
    each builds a whole one and publishes it in one assignment, so none sees it half made."""
    script = state["script"]
    if script is None:
        from redis import Redis

        client = Redis.from_url(app.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        script = state["script"] = client.register_script(SLIDING_WINDOW_LUA)
    return script


def limit(key: str, max_calls: int, per_seconds: int) -> None:
    """Allow at most max_calls calls per sliding per_seconds for key, else raise RateLimited (429).

    With Redis the window is shared by every process; without it (the embedded default) it is
    per process. While Redis is down the same window is kept per process: a limit never turns a
    request that would succeed into a 500, and an outage loosens it (each process allows the full
    rate) rather than lifting it.
    """
    app = current_app._get_current_object()
    state = _state(app)
    if not app.config.get("REDIS_URL") or time.monotonic() < state["skip_redis_until"]:
        wait = state["local"].hit(key, max_calls, per_seconds)
    else:
        from redis.exceptions import RedisError

        try:
            allowed, wait_us = _redis(app, state)(keys=[f"ratelimit:{key}"],
                                                  args=[max_calls, per_seconds * 1_000_000, uuid.uuid4().hex])
            wait = 0.0 if allowed else int(wait_us) / 1_000_000
        except RedisError as exc:
            state["skip_redis_until"] = time.monotonic() + REDIS_RETRY_AFTER_FAILURE_SECONDS
            log.warning("rate limit for %s kept per process, Redis failed: %s", key.split(":")[0], exc)
            wait = state["local"].hit(key, max_calls, per_seconds)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"Too many requests: at most {max_calls} per {per_seconds} seconds. Retry in {retry_after} s.",
            retry_after,
        )


def where_kept(app: Flask, redis_reachable: bool | None) -> str:
    """For /readyz: where the rate-limit windows are kept now, given whether Redis answered."""
    if not app.config.get("REDIS_URL"):
        return "per-process (no Redis configured)"
    if redis_reachable is False or time.monotonic() < _state(app)["skip_redis_until"]:
        return "per-process fallback: Redis unreachable"
    return "ok (Redis, shared by every process)"


def _check(setting: str, action: str, worker_id: str) -> None:
    rate = parse_rate(current_app.config.get(setting) or "off")
    if rate is not None:
        limit(f"{action}:{worker_id}", rate.max_calls, rate.per_seconds)


def check_claim(worker_id: str) -> None:
    """CLAIM_RATE_LIMIT per worker (default 30/minute); raises RateLimited."""
    _check("CLAIM_RATE_LIMIT", "claim", worker_id)


def check_submission(worker_id: str) -> None:
    """SUBMISSION_RATE_LIMIT per worker (default 20/minute); raises RateLimited."""
    _check("SUBMISSION_RATE_LIMIT", "submission", worker_id)


def check_account_attempt(action: str, email: str, address: str | None) -> None:
    """LOGIN_RATE_LIMIT_PER_EMAIL per action ("login", "worker-sign-up", "brand-sign-up") and
    LOGIN_RATE_LIMIT_PER_ADDRESS over all three together (each attempt costs an argon2 hash or a new
    account, and the CPU is shared); raises RateLimited. Called before any
    hashing, so a refused attempt costs a Redis round trip, not 150 ms of CPU. The address is
    request.remote_addr: behind a proxy, set TRUSTED_PROXY_COUNT so it is the client's, not the
    proxy's (else everyone shares one address's window)."""
    _check("LOGIN_RATE_LIMIT_PER_ADDRESS", "account-address", address or "unknown")
    _check("LOGIN_RATE_LIMIT_PER_EMAIL", f"{action}-email", email.strip().lower())
