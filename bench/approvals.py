"""Approvals bench: bulk approval of 10,000 submissions (ledger entries included) against the raw SQL
status update of 10,000 like rows."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

from bench import harness

N = 10_000
RUNS = int(os.environ.get("BENCH_APPROVAL_RUNS", "5"))
WORKERS = 1_000
PRICE = 50

BRIEF = {
    "title": "Approval bench", "objective": "content", "landing_url": "https://shop.example.com/bench",
    "budget_cents": 2 * RUNS * N * (PRICE + 5), "currency": "usd",
    "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-12-08T00:00:00Z", "auto_approve_after_hours": 72,
    "disclosure_required": False,
    "task_groups": [{"kind": "caption", "name": "A", "quantity": 2 * RUNS * N, "unit_price_cents": PRICE,
                     "proof": {"text": {"min_length": 5}}}],
}

# The baseline: what a bare status flip of the same number of submissions costs, one statement, one commit.
RAW_UPDATE = sa.text("""
    UPDATE submissions SET status = 'approved', decided_at = now(), decided_by = 'admin:adm_bench'
    WHERE id = ANY(:ids) AND status = 'needs_review'
""")


def _live_brief(app) -> tuple[str, str]:
    """A funded, published brief with one group of enough tasks for every run; (brief id, group id)."""
    from marketplace.auth.models import Brand
    from marketplace.briefs.schemas import BriefIn
    from marketplace.extensions import db

    with app.app_context():
        brand = Brand(name="Bench Shoes", email="bench-approvals@example.com")
        db.session.add(brand)
        db.session.commit()
        brief = harness.live_brief(brand.id, BriefIn().load(BRIEF))
        made = brief.id, brief.task_groups[0].id
        db.session.remove()
        return made


def main() -> None:
    from marketplace.auth.service import Principal
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger
    from marketplace.reviews import service as reviews
    from tests.factories import reviews as fr

    started = time.monotonic()
    with harness.scratch_database() as url:
        app = harness.migrated_app(url)
        brief_id, group_id = _live_brief(app)
        with app.app_context():
            worker_ids = fr.bulk_workers(db.session, WORKERS)
            db.session.remove()

        def fresh_rows() -> list[str]:
            """10,000 new needs_review submissions with two passed checks each (untimed)."""
            with app.app_context():
                ids = fr.bulk_submissions(db.session, group_id, worker_ids, N)
                db.session.commit()
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    # Each timed run starts from a vacuumed, analysed database just after a checkpoint:
                    # no autovacuum of the rows just made running alongside one side only, and no
                    # checkpoint landing halfway through one side (its full-page writes double the WAL).
                    conn.exec_driver_sql("VACUUM ANALYZE submissions, submission_checks, claims, tasks, "
                                         "ledger_entries, ledger_lines, ledger_accounts")
                    conn.exec_driver_sql("CHECKPOINT")
                db.session.remove()
            assert len(ids) == N
            return ids

        admin = Principal("admin", "adm_bench")

        def ours(ids: list[str]) -> None:
            with app.app_context():
                outcome = reviews.decide(admin, "approve", submission_ids=ids)
                db.session.remove()
            assert outcome.approved == N and not outcome.skipped, (outcome.approved, outcome.skipped[:3])

        def raw(ids: list[str]) -> None:
            with app.app_context(), db.engine.begin() as conn:
                assert conn.execute(RAW_UPDATE, {"ids": ids}).rowcount == N

        # Alternate, so table growth and cache warmth cost both sides alike.
        ours_times, raw_times = [], []
        for _ in range(RUNS):
            raw_times.append(harness.timeit(raw, repeat=1, setup=fresh_rows))
            ours_times.append(harness.timeit(ours, repeat=1, setup=fresh_rows))
        ours_s, raw_s = sorted(ours_times)[RUNS // 2], sorted(raw_times)[RUNS // 2]
        harness.report("approvals.bulk", f"approve {N:,} submissions", ours_s, raw_s, unit="s",
                       baseline_name="raw UPDATE", target=5, higher_is_better=False)
        harness.note(f"ours: one call, {N // reviews.CHUNK} chunks of {reviews.CHUNK}: row locks, escrow lock, "
                     f"{N:,} approval entries ({3 * N:,} ledger lines), submissions and tasks updated; "
                     f"runs ours {', '.join(f'{t:.3f}' for t in ours_times)} s, "
                     f"raw {', '.join(f'{t:.3f}' for t in raw_times)} s (median of {RUNS})")
        with app.app_context():
            escrow = ledger.balance(ledger.escrow(brief_id, "usd"))
            spent = RUNS * N * (PRICE + 5)
            harness.note(f"escrow after: {escrow} cents (funded {2 * RUNS * N * (PRICE + 5)}, "
                         f"approved by us {spent})")
            db.engine.dispose()
    harness.note(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
