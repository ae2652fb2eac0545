"""Background jobs: RQ on Redis when REDIS_URL is set, else a small thread pool in this process."""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Flask, current_app

log = logging.getLogger(__name__)

QUEUES = ("validation", "payouts", "default")


@dataclass(frozen=True)
class Periodic:
    """One entry of the schedule (workers.schedule.PERIODIC)."""

    name: str
    func: Callable  # a job function in workers/
    every_seconds: int
    # A setting (e.g. PAYOUT_SCHEDULE) written like "15m", "30s", "1h", "*/15 minutes" or "off":
    # when named, it decides the interval (every_seconds is the documented usual one) or turns the job off.
    setting: str | None = None

    def interval(self, config) -> int | None:
        """Seconds between runs under this configuration; None when the job is off."""
        if self.setting is None:
            return self.every_seconds
        return interval_seconds(config.get(self.setting), self.setting)


_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
          "d": 86400, "day": 86400}
_INTERVAL = re.compile(r"^(?:\*/)?(\d+)\s*([a-z]*?)s?$")


def interval_seconds(text: str | int | None, setting: str = "schedule") -> int | None:
    """ "15m", "15 minutes", "*/15 minutes", "90s", "1h", "900" (seconds) → seconds; "off", "" or None → None.
    Anything else is a ValueError naming the setting."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "off", "none", "0")):
        return None
    if isinstance(text, int):
        seconds = text
    else:
        match = _INTERVAL.match(text.strip().lower())
        unit = match and (match.group(2) or "s")  # a bare number is seconds; "minutes" matched as "minute"
        if not match or unit not in _UNITS:
            raise ValueError(f"{setting}={text!r}: write an interval like 15m, 1h, 30s, '*/15 minutes' or off.")
        seconds = int(match.group(1)) * _UNITS[unit]
    if seconds < 1:
        raise ValueError(f"{setting}={text!r}: the interval must be at least one second.")
    return seconds


def resolve(func: str | Callable) -> Callable:
    """The job function; a dotted name ("workers.claims.expire_claims", as RQ stores it) is imported."""
    if callable(func):
        return func
    module, _, attr = func.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def job_name(func: str | Callable) -> str:
    """The dotted name RQ stores for a job function (and logs show)."""
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def redis_connection(app: Flask | None = None):
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    ext = app.extensions.setdefault("redis", {})
    if url not in ext:
        from redis import Redis

        ext[url] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
    return ext[url]


def queue_name(name: str, app: Flask | None = None) -> str:
    return (app or current_app).config.get("RQ_QUEUE_PREFIX", "") + name


def queue(name: str = "default"):
    from rq import Queue

    return Queue(queue_name(name), connection=redis_connection())


def enqueue(func: str | Callable, *args, queue_name_: str = "default", job_id: str | None = None,
            retry_intervals: list[int] | None = None, timeout: int = 300, unique: bool = False,
            result_ttl: int = 3600, **kwargs):
    """Run func(*args) in the background. Call it after the commit that the job must see.

    unique=True (with a job_id): None when a job of that id is still queued or running. A job of
    that id that has ended (failed after its retries, finished, stopped) does not count: it is
    deleted and the job enqueued again, or a caller that retries what failed (the validation
    sweep) could never run it again while RQ keeps the dead job for failure_ttl.
    result_ttl=0: a job whose return value nobody reads is deleted when it succeeds (RQ writes no
    result and no finished-registry entry for it); a failed one is still kept for failure_ttl.
    """
    if redis_connection() is not None:
        from rq import Retry
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job, JobStatus

        if unique and job_id:
            try:
                ended = Job.fetch(job_id, connection=redis_connection())
            except NoSuchJobError:
                ended = None
            if ended is not None and ended.get_status() in (
                    JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED):
                ended.delete()
        retry = Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None
        try:
            return queue(queue_name_).enqueue(
                func, *args, job_id=job_id, retry=retry, job_timeout=timeout,
                result_ttl=result_ttl, failure_ttl=7 * 86400, unique=unique, **kwargs,
            )
        except DuplicateJobError:
            return None
    app = current_app._get_current_object()
    pool = app.extensions.setdefault("job_pool", ThreadPoolExecutor(max_workers=2, thread_name_prefix="job"))

    def run():
        attempts = 1 + len(retry_intervals or [])
        for attempt in range(attempts):
            try:
                with app.app_context():
                    return resolve(func)(*args, **kwargs)
            except Exception:
                log.exception("in-process job %s failed (attempt %d of %d)", job_name(func), attempt + 1, attempts)
                if attempt + 1 < attempts:
                    time.sleep(min((retry_intervals or [1])[attempt], 5))

    return pool.submit(run)


def run_periodic_forever(app: Flask, schedule: Sequence[Periodic], stop: threading.Event, tick: float = 1.0) -> None:
    """The scheduler loop: enqueue each periodic job of the schedule once per interval.

    With Redis, a SET NX on the interval's slot makes sure that several schedulers
    running side by side (a deploy overlap) enqueue each slot once.
    """
    with app.app_context():
        redis = redis_connection(app)
        while not stop.is_set():
            now = time.time()
            for periodic in schedule:
                every = periodic.interval(app.config)
                if every is None:
                    continue
                slot = int(now // every)
                lock = f"{queue_name('scheduler:', app)}{periodic.name}:{slot}"
                if redis is not None:
                    if redis.set(lock, "1", nx=True, ex=max(every * 2, 2)):
                        enqueue(periodic.func, job_id=f"{periodic.name}-{slot}", timeout=max(every * 5, 300))
                else:
                    last = app.extensions.setdefault("periodic_slots", {})
                    if last.get(periodic.name) != slot:
                        last[periodic.name] = slot
                        enqueue(periodic.func)
            stop.wait(tick)
