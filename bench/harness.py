"""The shared bench harness: scratch databases, a gunicorn server, an HTTP load generator, timing, printing."""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
SECRET_KEY = "bench-secret-key"
CORES_NOTE = (f"note: load generator and gunicorn share {os.cpu_count()} cores; that costs ours and the "
              "baseline alike, so the ratios are fair but absolute req/s are low")


# --- databases and services -------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one bench run; dropped (WITH (FORCE)) afterwards."""
    name = f"mk_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        _settle(conn)
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(PG_ADMIN_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _settle(conn, timeout: float = 60.0) -> None:
    """Let PostgreSQL and the kernel finish what an earlier bench left them (dirty buffers and
    pages, autovacuum of its bulk writes) before this one starts: that background work would land
    on the side of the next figure that uses the database, never on its bare baseline."""
    conn.execute(sa.text("CHECKPOINT"))
    os.sync()  # and the kernel's writeback of it, now rather than under the next figure's fsyncs
    deadline = time.monotonic() + timeout
    busy = sa.text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
    while conn.execute(busy).scalar() and time.monotonic() < deadline:
        time.sleep(0.5)


def migrated_app(url: str, **config: Any):
    """create_app on `url` with the schema built by the migrations (as production does). Extra keys
    override the config, e.g. REDIS_URL=…, STRIPE_API_KEY=…."""
    from flask_migrate import upgrade

    from marketplace import create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "WARNING", "REDIS_URL": None,
        # The SQLite defaults would apply when DATABASE_URL is unset in the bench's own environment.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 20},
        **config,
    })
    logging.disable(logging.INFO)  # alembic's per-revision INFO lines would bury the figures
    try:
        with app.app_context():
            upgrade(revision="heads")
    finally:
        logging.disable(logging.NOTSET)
    return app


def live_brief(brand_id: str, data: dict):
    """Create, fund and publish a brief from loaded BriefIn data, inside an app context; the Brief.
    Funding is booked as the Stripe webhook would book it (as `flask demo` does), so no Stripe is needed."""
    from marketplace.auth.service import Principal
    from marketplace.briefs import lifecycle
    from marketplace.briefs import service as briefs
    from marketplace.briefs.lifecycle import fund_offline
    from marketplace.briefs.models import Brief
    from marketplace.extensions import db

    brief = db.session.get(Brief, briefs.create_brief(brand_id, data))
    fund_offline(brief, "bench")
    lifecycle.publish(Principal("brand", brand_id), brief.id)
    return brief


@contextmanager
def spare_redis() -> Iterator[str]:
    """A Redis database index nobody else uses right now (shared with the test runs' SET NX claims in db 0),
    flushed before and after."""
    import redis

    admin = redis.Redis.from_url(REDIS_BASE_URL + "/0")
    for index in range(15, 0, -1):  # from the top: test runs take indexes from the bottom
        if admin.set(f"marketplace:test-db:{index}", f"bench-{os.getpid()}", nx=True, ex=3600):
            break
    else:
        raise RuntimeError("every spare Redis database index is taken")
    url = f"{REDIS_BASE_URL}/{index}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        admin.delete(f"marketplace:test-db:{index}")


@contextmanager
def stripe_standin(webhook_url: str | None = None) -> Iterator[tuple[Any, dict[str, str]]]:
    """The offline Stripe stand-in on a free port; yields it and the env (STRIPE_*) that points the app at it."""
    from stripe_standin import StripeStandIn

    secret = "whsec_bench"
    standin = StripeStandIn("127.0.0.1", 0, webhook_url=webhook_url, webhook_secret=secret).start()
    try:
        yield standin, {"STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": standin.url,
                        "STRIPE_WEBHOOK_SECRET": secret}
    finally:
        standin.stop()


def server_env(database_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment a gunicorn (or rq worker) process needs to build the app against the scratch services."""
    env = {"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "WARNING", **extra}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn_server(env: dict[str, str], workers: int = 2, app: str = "bench.bare_app:app",
                    timeout: float = 30.0) -> Iterator[str]:
    """gunicorn (sync workers, with the Procfile's gunicorn.conf.py) on a free port; yields the base URL once /healthz answers."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full_env.update(env)
    process = subprocess.Popen(
        [str(REPO_ROOT / ".venv/bin/gunicorn"), "-c", str(REPO_ROOT / "gunicorn.conf.py"), "-w", str(workers),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--access-logfile", "/dev/null", app],
        cwd=REPO_ROOT, env=full_env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode} before answering /healthz")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within {timeout} s")
            time.sleep(0.1)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- HTTP load -------------------------------------------------------------------------------------


@dataclass
class Request:
    """One request for the load generator. `url` is absolute; a dict/list body is sent as JSON."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    statuses: Counter
    first_error: str | None = None
    round_ratios: list[float] = field(default_factory=list)  # against the baseline, per round (load_pair)

    @property
    def rps(self) -> float:
        """Successful (2xx, or the expected status) requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        ms = {p: self.percentile(p) * 1000 for p in (50, 90, 99)}
        text = (f"{self.requests} requests in {self.seconds:.1f} s, latency p50 {ms[50]:.1f} ms "
                f"p90 {ms[90]:.1f} ms p99 {ms[99]:.1f} ms, errors {self.errors}")
        if self.errors:
            text += f" {dict(self.statuses)} first: {self.first_error}"
        return text


def _encode(body: Any, headers: dict[str, str]) -> tuple[bytes | None, dict[str, str]]:
    if body is None or isinstance(body, bytes):
        return body, headers
    if isinstance(body, str):
        return body.encode(), headers
    return json.dumps(body).encode(), {"Content-Type": "application/json", **headers}


def timed_request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
                  headers: dict) -> tuple[int, bytes, float]:
    """One request on a kept-alive connection: (status, body, seconds); status 0 (the error as the
    body) when the connection failed, which closes it for the next request to reopen."""
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload, status = response.read(), response.status
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        status, payload = 0, repr(exc).encode()
    return status, payload, time.perf_counter() - started


def load(target: str | Callable[[int], Request], *, concurrency: int = 16, duration: float | None = 5.0,
         requests: int | None = None, method: str = "GET", headers: dict[str, str] | None = None,
         body: Any = None, warmup: float = 0.5, expect: int | None = None) -> LoadResult:
    """Drive `target` (a URL, or a factory called with a unique request number returning a Request) from
    `concurrency` threads, each with its own keep-alive HTTPConnection, for `duration` seconds or `requests`
    requests in all. Answers other than 2xx (or than the `expect`ed status, e.g. 302) and connection
    failures count as errors. A short warm-up runs first (not counted) so lazily opened database
    connections do not land in the figures."""
    if requests is not None:
        duration = None
    if isinstance(target, str):
        fixed = Request(method, target, dict(headers or {}), body)
        encoded = _encode(fixed.body, fixed.headers)

        def next_request(_: int) -> tuple[Request, bytes | None, dict[str, str]]:
            return fixed, *encoded
    else:
        def next_request(i: int) -> tuple[Request, bytes | None, dict[str, str]]:
            req = target(i)
            return req, *_encode(req.body, {**(headers or {}), **req.headers})

    lock = threading.Lock()
    counter = itertools.count()
    latencies: list[float] = []
    statuses: Counter = Counter()
    state: dict[str, Any] = {"taken": 0, "errors": 0, "first_error": None, "record": False, "stop": False}

    def take() -> tuple[int, bool] | None:
        """The next request number, and whether it counts (requests started in the warm-up do not)."""
        with lock:
            if state["stop"]:
                return None
            if state["record"]:
                if requests is not None and state["taken"] >= requests:
                    return None
                state["taken"] += 1
            return next(counter), state["record"]

    def run() -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        own_latencies: list[float] = []
        while (taken := take()) is not None:
            i, counts = taken
            req, data, hdrs = next_request(i)
            parts = urlsplit(req.url)
            conn = connections.get(parts.netloc)
            if conn is None:
                conn = connections[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=60)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            status, payload, elapsed = timed_request(conn, req.method, path, data, hdrs)
            if not counts:
                continue
            own_latencies.append(elapsed)
            with lock:
                statuses[status] += 1
                if (status != expect) if expect is not None else not 200 <= status < 300:
                    state["errors"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = f"{status} {req.method} {path}: {payload[:300]!r}"
        for conn in connections.values():
            conn.close()
        with lock:
            latencies.extend(own_latencies)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    with lock:
        state["record"] = True
    started = time.perf_counter()
    if duration is not None:
        time.sleep(duration)
        with lock:
            state["stop"] = True
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return LoadResult(sum(statuses.values()), state["errors"], seconds, latencies, statuses, state["first_error"])


def merge(results: list[LoadResult]) -> LoadResult:
    """Several load runs of the same target as one (requests, errors, time and latencies added up)."""
    statuses: Counter = Counter()
    for result in results:
        statuses.update(result.statuses)
    return LoadResult(sum(r.requests for r in results), sum(r.errors for r in results),
                      sum(r.seconds for r in results), [x for r in results for x in r.latencies], statuses,
                      next((r.first_error for r in results if r.first_error), None))


def load_pair(ours: dict[str, Any], baseline: dict[str, Any], *, rounds: int = 3, duration: float = 5.0,
              **common: Any) -> tuple[LoadResult, LoadResult]:
    """Load ours and the baseline in alternating rounds (duration split between them), so a machine whose
    load drifts during the run (other processes, CPU throttling) weighs on both alike. `ours` and `baseline`
    are keyword arguments of `load` (target=…, method=…, headers=…, body=…)."""
    mine: list[LoadResult] = []
    theirs: list[LoadResult] = []
    for i in range(rounds):
        order = [(baseline, theirs), (ours, mine)] if i % 2 == 0 else [(ours, mine), (baseline, theirs)]
        for kwargs, into in order:
            into.append(load(**{**common, **kwargs, "duration": duration / rounds}))
    merged = merge(mine)
    merged.round_ratios = [ratio(m.rps, t.rps) for m, t in zip(mine, theirs, strict=True)]
    return merged, merge(theirs)


# --- timing and printing ---------------------------------------------------------------------------


def timeit(fn: Callable[..., Any], repeat: int = 5, setup: Callable[[], Any] | None = None) -> float:
    """Median wall-clock seconds of `fn` over `repeat` runs. With `setup`, each run first calls it
    (untimed) and passes what it returns to `fn`."""
    times = []
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        started = time.perf_counter()
        fn(arg) if setup is not None else fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline else float("nan")


def report(name: str, what: str, ours: float, baseline: float, *, unit: str = "req/s",
           baseline_name: str = "bare", target: float | None = None, higher_is_better: bool = True) -> float:
    """Print one figure on one line and return its ratio, e.g.
    `briefs.read   GET /v1/briefs/{id}   1234 req/s   bare 2345 req/s   ratio 0.53 (target ≥ 0.5) ok`."""
    r = ratio(ours, baseline)
    fmt = "{:.0f}" if unit == "req/s" else "{:.4g}"
    line = (f"{name:<18} {what:<30} {fmt.format(ours):>8} {unit}   {baseline_name} {fmt.format(baseline)} {unit}   "
            f"ratio {r:.2f}")
    if target is not None:
        met = r >= target if higher_is_better else r <= target
        line += f" (target {'≥' if higher_is_better else '≤'} {target:g}) {'ok' if met else 'MISSED'}"
    print(line, flush=True)
    return r


def note(text: str) -> None:
    """A detail line under the figures (latencies, set-up, caveats)."""
    print(f"    {text}", flush=True)
