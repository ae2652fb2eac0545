"""A drop: a brief with 10,000 tasks goes live and 500 workers rush it, against gunicorn.

Three phases against one server, the bare endpoint measured in the same run at the same
concurrency (half before the rush, half after, so a machine whose load drifts weighs on both):

- listing: every worker refreshes GET /v1/tasks while the drop is live and untouched (the group
  behind eligibility rules the workers pass, so the listing's EXISTS checks all run);
- rush: every worker claims from the group (a fresh Idempotency-Key on each claim, as a client
  that retries would send) until it answers "No open task is left";
- the check, in the database afterwards: every task handed out once, no claim answered 201 that
  is not held, none held that was not answered, no task left open.

The default is a smaller drop (2,000 tasks, 200 workers: TASKS, WORKERS below), so the bench runs in under two
minutes on a loaded two-core machine; BENCH_DROP_FULL=1 runs the full 10,000 tasks and 500 workers
(or set BENCH_DROP_TASKS / BENCH_DROP_WORKERS).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa

from bench.harness import (
    CORES_NOTE,
    LoadResult,
    gunicorn_server,
    live_brief,
    load,
    merge,
    migrated_app,
    note,
    report,
    scratch_database,
    server_env,
    spare_redis,
    timed_request,
)

FULL = os.environ.get("BENCH_DROP_FULL") == "1"
TASKS = int(os.environ.get("BENCH_DROP_TASKS", 10_000 if FULL else 2_000))
WORKERS = int(os.environ.get("BENCH_DROP_WORKERS", 500 if FULL else 200))
LISTING_SECONDS = float(os.environ.get("BENCH_DROP_LISTING_SECONDS", "8"))
BARE_SECONDS = 8.0  # split: half before the rush, half after
CLAIM_TARGET = 0.3
LISTING_TARGET = 0.4
NO_TASK_LEFT = "No open task is left"


def seed(app) -> tuple[str, list[str]]:
    """A live brief with one group of TASKS tasks behind eligibility rules, and WORKERS workers
    who pass them, each logged in; returns (group id, tokens)."""
    from argon2 import PasswordHasher

    from marketplace.auth import service as accounts
    from marketplace.db.clock import utcnow
    from marketplace.workforce import profile

    # The seeding signs up and logs in hundreds of workers; argon2's default cost would spend a
    # minute on it here. The server never checks a password in this bench (workers send tokens).
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with app.app_context():
        brand, _ = accounts.sign_up_brand("Drop Co", "brand@drop.example")
        outsider = accounts.sign_up_worker("outsider@drop.example", "bench-password-123", "Outsider", "GB")
        now = utcnow()
        brief = live_brief(brand.id, {
            "title": "The drop", "objective": "engagement", "landing_url": "https://shop.example.com/drop",
            "budget_cents": TASKS * 20, "currency": "usd", "starts_at": now - timedelta(hours=1),
            "ends_at": now + timedelta(days=1), "auto_approve_after_hours": 72, "disclosure_required": True,
            "prohibitions": [], "task_groups": [
                {"kind": "caption", "quantity": TASKS, "unit_price_cents": 10, "instructions": "Write a caption",
                 "proof": {}, "eligibility": {"countries": ["GB", "FR"], "languages": ["en"], "min_approved": 0,
                                              "exclude_workers": [outsider.id]}}],
        })
        group_id = brief.task_groups[0].id
        tokens = []
        for i in range(WORKERS):
            worker = accounts.sign_up_worker(f"w{i}@drop.example", "bench-password-123", f"Worker {i}", "GB")
            profile.update_profile(worker.id, {"languages": ["en"]})
            tokens.append(accounts.log_in_worker(f"w{i}@drop.example", "bench-password-123")[0])
        return group_id, tokens


def rush(base: str, group_id: str, tokens: list[str]) -> tuple[LoadResult, list[dict], Counter]:
    """Every worker (one thread each, released together) claims until the group is empty.
    Returns the load figures (201s only count as successes; the final 'none left' 409s are not
    counted as requests at all), the 201 bodies, and the other answers by status."""
    netloc = urlsplit(base).netloc
    path = f"/v1/task-groups/{group_id}/claim"
    lock = threading.Lock()
    start = threading.Event()
    latencies: list[float] = []
    claimed: list[dict] = []
    statuses: Counter = Counter()
    others: Counter = Counter()
    first_error: list[str] = []

    def worker(token: str) -> None:
        conn = http.client.HTTPConnection(netloc, timeout=120)
        own_latencies, own_claims = [], []
        start.wait()
        while True:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            status, payload, elapsed = timed_request(conn, "POST", path, None, headers)
            if status == 409 and NO_TASK_LEFT.encode() in payload:
                break  # the drop is gone: this worker stops
            with lock:
                statuses[status] += 1
            own_latencies.append(elapsed)
            if status == 201:
                own_claims.append(json.loads(payload))
            else:
                with lock:
                    others[status] += 1
                    if not first_error:
                        first_error.append(f"{status}: {payload[:300]!r}")
                if status == 0 or status >= 500:
                    time.sleep(0.05)
        conn.close()
        with lock:
            latencies.extend(own_latencies)
            claimed.extend(own_claims)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in tokens]
    for t in threads:
        t.start()
    started = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    errors = sum(others.values())
    result = LoadResult(sum(statuses.values()), errors, seconds, latencies, statuses,
                        first_error[0] if first_error else None)
    return result, claimed, others


def percentiles(result: LoadResult) -> str:
    ms = {p: result.percentile(p) * 1000 for p in (50, 95, 99)}
    text = (f"{result.requests} requests in {result.seconds:.1f} s, latency p50 {ms[50]:.0f} ms "
            f"p95 {ms[95]:.0f} ms p99 {ms[99]:.0f} ms, errors {result.errors}")
    if result.errors:
        text += f" {dict(result.statuses)} first: {result.first_error}"
    return text


def check(app, group_id: str, claimed: list[dict]) -> tuple[bool, str]:
    """What the database holds after the rush, against what the workers were told."""
    from marketplace.extensions import db

    with app.app_context():
        held, distinct, answered_held = db.session.execute(sa.text(
            "SELECT count(*), count(DISTINCT task_id), count(*) FILTER (WHERE id = ANY(:ids)) "
            "FROM claims WHERE group_id = :g AND status = 'active'"),
            {"g": group_id, "ids": [c["claim_id"] for c in claimed]}).one()
        left_open, tasks_claimed = db.session.execute(sa.text(
            "SELECT count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'claimed') "
            "FROM tasks WHERE group_id = :g"), {"g": group_id}).one()
        db.session.remove()
        db.engine.dispose()
    told = [c["task"]["id"] for c in claimed]
    twice = len(told) - len(set(told))
    lost = len(claimed) - answered_held  # answered 201, not held
    unanswered = held - answered_held  # held, never answered 201 (an answer lost on its way)
    ok = twice == 0 and lost == 0 and unanswered == 0 and held == distinct == tasks_claimed == TASKS \
        and left_open == 0
    return ok, (f"check: {len(claimed)} claims answered 201, {held} held ({distinct} distinct tasks), "
                f"{tasks_claimed} of {TASKS} tasks claimed, {left_open} left open; handed out twice {twice}, "
                f"answered but not held {lost}, held but not answered {unanswered}"
                + ("" if ok else "  MISMATCH"))


def main() -> None:
    with scratch_database() as database_url, spare_redis() as redis_url:
        app = migrated_app(database_url)
        seeding = time.monotonic()
        group_id, tokens = seed(app)
        note(f"seeded {TASKS} tasks and {WORKERS} workers in {time.monotonic() - seeding:.0f} s")
        # The limiter stays in the path (a Redis round trip per claim) but never refuses.
        env = server_env(database_url, redis_url, CLAIM_RATE_LIMIT="1000000/minute")
        with gunicorn_server(env, workers=2) as base:
            bare_before = load(f"{base}/bench/bare", concurrency=WORKERS, duration=BARE_SECONDS / 2)

            def listing_request(i: int):
                from bench.harness import Request

                return Request("GET", f"{base}/v1/tasks", {"Authorization": f"Bearer {tokens[i % WORKERS]}"})

            listing = load(listing_request, concurrency=WORKERS, duration=LISTING_SECONDS)
            claims, claimed, _ = rush(base, group_id, tokens)
            bare_after = load(f"{base}/bench/bare", concurrency=WORKERS, duration=BARE_SECONDS / 2)
        bare = merge([bare_before, bare_after])
        report("drop.claim", f"POST claim, {WORKERS} workers rush", claims.rps, bare.rps, target=CLAIM_TARGET)
        note(f"claim:   {percentiles(claims)}")
        report("drop.listing", f"GET /v1/tasks, {WORKERS} workers", listing.rps, bare.rps, target=LISTING_TARGET)
        note(f"listing: {percentiles(listing)}")
        note(f"bare:    {percentiles(bare)}")
        ok, text = check(app, group_id, claimed)
        note(text)
        if not FULL:
            note(f"a smaller drop than the full one ({TASKS} tasks, {WORKERS} workers); BENCH_DROP_FULL=1 for 10,000 and 500")
        note(CORES_NOTE)
        if not ok:
            raise AssertionError(text)


if __name__ == "__main__":
    main()
