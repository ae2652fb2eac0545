"""Approvals bench: bulk approval of 10,000 submissions (ledger entries included) against the raw SQL
status update of 10,000 like rows, and what the outbox (one event per approval, written in the
approval's transaction) costs: the same approval with the events on, and with them off."""

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
    "budget_cents": 3 * RUNS * N * (PRICE + 5), "currency": "usd",
    "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-12-08T00:00:00Z", "auto_approve_after_hours": 72,
    "disclosure_required": False,
    # A group's tasks are capped at 100,000: one group a side (raw UPDATE, outbox on, outbox off).
    "task_groups": [{"kind": "caption", "name": name, "quantity": RUNS * N, "unit_price_cents": PRICE,
                     "proof": {"text": {"min_length": 5}}} for name in ("A", "B", "C")],
}

# The baseline: what a bare status flip of the same number of submissions costs, one statement, one commit.
RAW_UPDATE = sa.text("""
    UPDATE submissions SET status = 'approved', decided_at = now(), decided_by = 'admin:adm_bench'
    WHERE id = ANY(:ids) AND status = 'needs_review'
""")


def _live_brief(app) -> tuple[str, list[str]]:
    """A funded, published brief with a group of enough tasks for every run of each side; (brief id, group ids)."""
    from marketplace.auth.models import Brand
    from marketplace.briefs.schemas import BriefIn
    from marketplace.extensions import db

    with app.app_context():
        brand = Brand(name="Bench Shoes", email="bench-approvals@example.com")
        db.session.add(brand)
        db.session.commit()
        brief = harness.live_brief(brand.id, BriefIn().load(BRIEF))
        made = brief.id, [group.id for group in brief.task_groups]
        db.session.remove()
        return made


class Outbox:
    """The approval's outbox switched on or off. The events are one part of the decision's single
    statement (marketplace.db.together), so they cannot be timed on their own: what they cost is the
    approval with them on less the approval with them off. Off, events.insert_many is given a
    SELECT of no rows (the statement keeps its shape and writes no event); on, it is the real one,
    and events.announce counts what was written."""

    def __init__(self) -> None:
        from marketplace.events import service as events

        self.events, self.real_insert, self.real_announce = events, events.insert_many, events.announce
        self.on, self.written = True, 0
        events.insert_many, events.announce = self.insert_many, self.announce

    def insert_many(self, type, objects):
        return self.real_insert(type, objects if self.on else objects.where(sa.false()))

    def announce(self, type, written):
        self.written += len(written)
        return self.real_announce(type, written)

    def restore(self) -> None:
        self.events.insert_many, self.events.announce = self.real_insert, self.real_announce


def main() -> None:
    from marketplace.auth.service import Principal
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger
    from marketplace.reviews import service as reviews
    from tests.factories import reviews as fr

    started = time.monotonic()
    with harness.scratch_database() as url:
        app = harness.migrated_app(url)
        brief_id, group_ids = _live_brief(app)
        with app.app_context():
            worker_ids = fr.bulk_workers(db.session, WORKERS)
            db.session.remove()

        def fresh_rows(group_id: str) -> list[str]:
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
        outbox = Outbox()

        def ours(ids: list[str]) -> None:
            with app.app_context():
                outcome = reviews.decide(admin, "approve", submission_ids=ids)
                db.session.remove()
            assert outcome.approved == N and not outcome.skipped, (outcome.approved, outcome.skipped[:3])

        def with_outbox(ids: list[str]) -> None:
            outbox.on, outbox.written = True, 0
            ours(ids)
            assert outbox.written == N, outbox.written

        def without_outbox(ids: list[str]) -> None:
            outbox.on, outbox.written = False, 0
            ours(ids)
            assert outbox.written == 0, outbox.written

        def raw(ids: list[str]) -> None:
            with app.app_context(), db.engine.begin() as conn:
                assert conn.execute(RAW_UPDATE, {"ids": ids}).rowcount == N

        # Alternate, so table growth and cache warmth cost every side alike.
        ours_times, bare_times, raw_times = [], [], []
        try:
            for _ in range(RUNS):
                for side, times, group_id in ((raw, raw_times, group_ids[0]), (with_outbox, ours_times, group_ids[1]),
                                              (without_outbox, bare_times, group_ids[2])):
                    times.append(harness.timeit(side, repeat=1, setup=lambda group_id=group_id: fresh_rows(group_id)))
        finally:
            outbox.restore()
        median = lambda times: sorted(times)[len(times) // 2]  # noqa: E731
        ours_s, bare_s, raw_s = median(ours_times), median(bare_times), median(raw_times)
        # What the events cost: the approval with them less without them, paired run by run.
        events_s = max(median([on - off for on, off in zip(ours_times, bare_times, strict=True)]), 1e-3)
        harness.report("approvals.bulk", f"approve {N:,} submissions", ours_s, raw_s, unit="s",
                       baseline_name="raw UPDATE", target=5, higher_is_better=False)
        harness.report("approvals.outbox", f"approve {N:,}, outbox on", ours_s, bare_s, unit="s",
                       baseline_name="outbox off", higher_is_better=False)
        harness.report("approvals.events", "events written by the outbox", N / events_s, N / raw_s,
                       unit="rows/s", baseline_name="raw UPDATE")
        harness.note(f"outbox: {N:,} events, one INSERT … SELECT a chunk inside the decision's one statement, "
                     f"with their fan-out; {events_s:.3f} s of the approval's {ours_s:.3f} s (median of on less off, "
                     f"run by run); outbox off {', '.join(f'{t:.3f}' for t in bare_times)} s")
        harness.note(f"ours: one call, {N // reviews.CHUNK} chunks of {reviews.CHUNK}: row locks, escrow lock, "
                     f"{N:,} approval entries ({3 * N:,} ledger lines) in one COPY each, then one statement a chunk: "
                     f"submissions and tasks moved, notices, audit rows and events written; "
                     f"runs ours {', '.join(f'{t:.3f}' for t in ours_times)} s, "
                     f"raw {', '.join(f'{t:.3f}' for t in raw_times)} s (median of {RUNS})")
        with app.app_context():
            escrow = ledger.balance(ledger.escrow(brief_id, "usd"))
            spent = 2 * RUNS * N * (PRICE + 5)
            harness.note(f"escrow after: {escrow} cents (funded {3 * RUNS * N * (PRICE + 5)}, "
                         f"approved by us {spent})")
            db.engine.dispose()
    harness.note(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
