"""Tracked-link redirects per second against a bare redirect, and a brief's report over many clicks.

The report is timed over 1,000,000 clicks and 100,000 conversions by default (loaded in about a
minute); BENCH_TRACKING_FULL=1 loads the full size, 10,000,000 clicks (several minutes on a shared
machine). BENCH_CLICKS / BENCH_CONVERSIONS set either size outright. Rows are made set-based with
generate_series, never over HTTP, spread over the last 30 days (every hour of them), so the clicks
fill two or three monthly partitions and about 600 × 720 hourly roll-up rows, folded (as the
scheduler's fold-click-hours job does) to one row a day before today.

Full size, once, on the shared 2-core machine under load (load average ~13), 2026-12-04: 10,000,000
clicks and 100,000 conversions loaded in 1,032 s; the report's median 141.3 ms (ratio 0.71 of the
200 ms budget; a bare GET 0.78 ms); /t/{code} 374 req/s against a bare redirect's 916 (0.41).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import timedelta

import sqlalchemy as sa

from bench.harness import (
    CORES_NOTE,
    LoadResult,
    Request,
    gunicorn_server,
    live_brief,
    load,
    load_pair,
    migrated_app,
    note,
    report,
    scratch_database,
    server_env,
)

CLIENTS = 16
SECONDS = 5.0
ROUNDS = 2  # bare and ours alternate, so drift on a shared machine hits both (SECONDS each per round)
QUANTITY = 1_000  # tasks per group; three groups (two caption variants and a clip)
APPROVED = 2_000
WORKERS = 200
FULL = os.environ.get("BENCH_TRACKING_FULL", "") not in ("", "0")
CLICKS = int(os.environ.get("BENCH_CLICKS", 10_000_000 if FULL else 1_000_000))
CONVERSIONS = int(os.environ.get("BENCH_CONVERSIONS", 100_000))
CLICK_CHUNK = 1_000_000  # rows per INSERT … SELECT, so one statement's sort and WAL stay bounded
REPORT_BUDGET_MS = 200.0
REPORT_RUNS = 15


def seed(app) -> tuple[str, str, list[str]]:
    """A live brief with 2,000 approved tasks (ledger entries included), CLICKS clicks and CONVERSIONS
    conversions on their tracked links, all set-based; returns (brief id, brand key, tracked codes).
    clicks_hourly is filled from the clicks as the click statement would have kept it."""
    from marketplace.auth import service as accounts
    from marketplace.briefs.models import fee_for
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger

    with app.app_context():
        now = utcnow()
        # The months the clicks fall in have their partitions, as the scheduler makes them ahead.
        from marketplace.tracking import partitions

        partitions.ensure_partitions(today=now - timedelta(days=31), months_ahead=3)
        brand, key = accounts.sign_up_brand("Bench Co", "brand@bench.example")
        group = {"quantity": QUANTITY, "unit_price_cents": 60, "instructions": "Write a caption", "proof": {}}
        brief = live_brief(brand.id, {
            "title": "Bench results", "objective": "conversions", "landing_url": "https://shop.example.com/spring?ref=x",
            "budget_cents": 10_000_000, "currency": "usd", "target_cpa_cents": 600,
            "starts_at": now - timedelta(days=40), "ends_at": now + timedelta(days=1), "auto_approve_after_hours": 72,
            "disclosure_required": True, "prohibitions": [],
            "task_groups": [{**group, "kind": "caption", "name": "A"}, {**group, "kind": "caption", "name": "B"},
                            {**group, "kind": "clip", "name": "C", "unit_price_cents": 100}],
        })

        run = db.session.execute
        params = {"brief": brief.id, "brand": brand.id, "approved": APPROVED, "workers": WORKERS,
                  "clicks": CLICKS, "conversions": CONVERSIONS}
        run(sa.text("""
            INSERT INTO workers (id, email, password_hash, display_name, country, created_at)
            SELECT 'wrk_' || md5('w' || g), 'w' || g || '@bench.example', 'x', 'Worker ' || g, 'GB', now()
            FROM generate_series(0, :workers - 1) g"""), params)
        # Tasks taken in seq order across the groups, so every group gets a third of the approvals.
        run(sa.text("""
            INSERT INTO claims (id, task_id, group_id, brief_id, worker_id, tracked_code, status, claimed_at, expires_at)
            SELECT 'clm_' || md5(t.id), t.id, t.group_id, t.brief_id, 'wrk_' || md5('w' || (t.n % :workers)),
                   substr(md5(t.id || 'code'), 1, 12), 'submitted', now(), now() + interval '1 hour'
            FROM (SELECT id, group_id, brief_id, row_number() OVER (ORDER BY seq, group_id) - 1 AS n
                  FROM tasks WHERE brief_id = :brief) t
            WHERE t.n < :approved"""), params)
        run(sa.text("""
            UPDATE tasks t SET status = 'approved', worker_id = c.worker_id
            FROM claims c WHERE c.task_id = t.id AND c.brief_id = :brief"""), params)
        run(sa.text("""
            INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, text, submitted_at,
                                     auto_approve_at, validation_attempts, decided_at, decided_by, created_at)
            SELECT 'sub_' || md5(c.id), c.task_id, c.id, c.group_id, c.brief_id, c.worker_id, 'approved',
                   'Caption ' || c.tracked_code || ' #ad', now(), now() + interval '72 hours', 1, now(), 'bench', now()
            FROM claims c WHERE c.brief_id = :brief"""), params)
        approvals = run(sa.text("""
            SELECT s.id, s.worker_id, g.unit_price_cents FROM submissions s JOIN task_groups g ON g.id = s.group_id
            WHERE s.brief_id = :brief"""), params).all()
        ledger.post_many([
            ledger.Posting("approval", sub_id, (
                (ledger.escrow(brief.id, "usd"), price + fee_for(price, brief.fee_bps)),
                (ledger.worker_available(worker_id, "usd"), -price),
                (ledger.platform_fees("usd"), -fee_for(price, brief.fee_bps)),
            ))
            for sub_id, worker_id, price in approvals
        ])
        numbered = """(SELECT c.*, row_number() OVER (ORDER BY c.id) - 1 AS n FROM claims c WHERE c.brief_id = :brief)"""
        db.session.execute(sa.text(f"CREATE TEMPORARY TABLE bench_claims AS {numbered}"), params)
        for start in range(0, CLICKS, CLICK_CHUNK):
            run(sa.text("""
                INSERT INTO clicks (id, claim_id, task_id, group_id, brief_id, worker_id, clicked_at, ip_hash,
                                    user_agent_hash)
                SELECT 'clk_' || replace(gen_random_uuid()::text, '-', ''), c.id, c.task_id, c.group_id, c.brief_id,
                       c.worker_id, now() - (g % 30) * interval '1 day' - random() * interval '1 day',
                       md5(g::text) || md5(g::text), md5('ua') || md5('ua')
                FROM generate_series(:start, :stop - 1) g JOIN bench_claims c ON c.n = g % :approved"""),
                {**params, "start": start, "stop": min(start + CLICK_CHUNK, CLICKS)})
        run(sa.text("""
            INSERT INTO clicks_hourly (brief_id, group_id, worker_id, hour, clicks)
            SELECT brief_id, group_id, worker_id, date_trunc('hour', clicked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   count(*)
            FROM clicks WHERE brief_id = :brief GROUP BY 1, 2, 3, 4"""), params)
        run(sa.text(f"""
            INSERT INTO conversions (id, brand_id, external_id, claim_id, task_id, group_id, brief_id, worker_id,
                                     value_cents, currency, occurred_at, created_at)
            SELECT 'conv_' || replace(gen_random_uuid()::text, '-', ''), :brand, 'order-' || g, c.id, c.task_id,
                   c.group_id, c.brief_id, c.worker_id, (g % 50 + 1) * 100, 'usd',
                   now() - (g % 30) * interval '1 day', now()
            FROM generate_series(0, :conversions - 1) g JOIN {numbered} c ON c.n = (g * 7) % :approved"""), params)
        codes = list(db.session.scalars(sa.text("SELECT tracked_code FROM claims WHERE brief_id = :brief"), params))
        db.session.commit()
        # What the scheduler's hourly fold-click-hours job has done to the days before today.
        from marketplace.tracking import rollup

        rollup.fold_closed_days()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # What autovacuum does in production: index-only scans. The clicks only need their
            # statistics (reports no longer read them), and a VACUUM of 10,000,000 would take minutes.
            for table in db.metadata.sorted_tables:
                conn.execute(sa.text(f'{"ANALYZE" if table.name == "clicks" else "VACUUM ANALYZE"} "{table.name}"'))
        return brief.id, key, codes


def time_report(base: str, brief_id: str, key: str) -> tuple[float, dict]:
    """Median wall time of GET /v1/briefs/{id}/report over REPORT_RUNS sequential requests, and the report."""
    import http.client
    import json
    from urllib.parse import urlsplit

    netloc = urlsplit(base).netloc
    conn = http.client.HTTPConnection(netloc, timeout=60)
    times, body = [], {}
    for i in range(REPORT_RUNS + 2):
        started = time.perf_counter()
        conn.request("GET", f"/v1/briefs/{brief_id}/report", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"report answered {response.status}: {payload[:300]!r}")
        if i >= 2:  # the first two warm the worker's connections and caches
            times.append(elapsed)
        body = json.loads(payload)
    conn.close()
    return statistics.median(times) * 1000, body


def redirects(base: str, codes: list[str]) -> tuple[LoadResult, LoadResult]:
    """302s of /t/{code} and of the bare redirect, alternating rounds."""
    def tracked(i: int) -> Request:
        # Every request a visitor of its own, behind the proxy, so every one is counted and written: the
        # costly path (a repeat visit writes nothing).
        address = ".".join(str(b) for b in uuid.uuid4().bytes[:4])
        return Request("GET", f"{base}/t/{codes[i % len(codes)]}",
                       headers={"User-Agent": "Mozilla/5.0 (bench)", "X-Forwarded-For": address})

    def bare(i: int) -> Request:
        return Request("GET", f"{base}/bench/bare-redirect/{codes[i % len(codes)]}")

    return load_pair({"target": tracked}, {"target": bare}, rounds=ROUNDS, duration=SECONDS * ROUNDS,
                     concurrency=CLIENTS, expect=302)


def main() -> None:
    with scratch_database() as database_url:
        app = migrated_app(database_url)
        started = time.perf_counter()
        brief_id, key, codes = seed(app)
        seeded_s = time.perf_counter() - started
        # As behind a load balancer: the visitor's address comes from X-Forwarded-For.
        with gunicorn_server(server_env(database_url, TRUSTED_PROXY_COUNT="1"), workers=2) as base:
            report_ms, body = time_report(base, brief_id, key)
            baseline_ms, _ = _bare_latency(base)
            ours, bare = redirects(base, codes)
        # The report's figure, ratio first: its median time over the 200 ms budget, then against a bare GET.
        print(f"ratio {report_ms / REPORT_BUDGET_MS:.2f} of budget (target ≤ 1) "
              f"{'ok' if report_ms <= REPORT_BUDGET_MS else 'MISSED'}   tracking.report GET /v1/briefs/{{id}}/report "
              f"{report_ms:.1f} ms over {CLICKS:,} clicks and {CONVERSIONS:,} conversions   budget "
              f"{REPORT_BUDGET_MS:.0f} ms   bare GET {baseline_ms:.2f} ms ({report_ms / baseline_ms:.1f}x)", flush=True)
        note(f"seeded {APPROVED} approved tasks, {CLICKS:,} clicks, {CONVERSIONS:,} conversions in {seeded_s:.1f} s"
             f"{'' if FULL else ' (BENCH_TRACKING_FULL=1 for 10,000,000 clicks)'}")
        report("tracking.redirect", f"GET /t/{{code}}, {CLIENTS} clients", ours.rps, bare.rps, target=0.5)
        note(f"/t/{{code}}: {ours.summary()}; ratio per round {', '.join(f'{r:.2f}' for r in ours.round_ratios)}")
        note(f"bare redirect: {bare.summary()}")
        totals = body["totals"]
        note(f"report median of {REPORT_RUNS} sequential requests over HTTP; a bare GET takes {baseline_ms:.1f} ms; "
             f"totals: clicks {totals['clicks']}, conversions {totals['conversions']}, approved "
             f"{totals['approved_actions']}, spend {totals['spend_cents']} cents, CPA {totals['cpa_cents']}, "
             f"ROAS {totals['roas']}; {len(body['daily'])} days, {len(body['workers'])} workers")
        if (totals["clicks"], totals["conversions"], totals["approved_actions"]) != (CLICKS, CONVERSIONS, APPROVED):
            note("MISMATCH: the report does not count what was seeded")
        with app.app_context():
            from marketplace.extensions import db

            stored = db.session.execute(sa.text("SELECT count(*) FROM clicks")).scalar_one()
            rolled = db.session.execute(sa.text("SELECT sum(clicks), count(*) FROM clicks_hourly")).one()
            parts = db.session.execute(sa.text(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'clicks'::regclass")).scalar_one()
            db.engine.dispose()
        note(f"check: {stored - CLICKS} clicks stored by the load (every answered 302 plus the warm-ups); "
             f"clicks_hourly sums to {rolled[0]} in {rolled[1]} rows ({'=' if rolled[0] == stored else 'MISMATCH ≠'} "
             f"the raw count); {parts} partitions of clicks")
        note(CORES_NOTE)


def _bare_latency(base: str) -> tuple[float, None]:
    result = load(f"{base}/bench/bare", concurrency=1, requests=50, warmup=0.2)
    return result.percentile(50) * 1000, None


if __name__ == "__main__":
    main()
