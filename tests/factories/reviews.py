"""Submissions waiting for review, for the review tests and the approval bench.

Brands, live briefs, workers and claims go through the HTTP API (tests/factories/); the
submission rows and their check results are written with set-based SQL, as the proofs
domain leaves them after validation (claim and task marked submitted, auto_approve_at from
the brief). The bulk variant also makes the workers and claims in SQL, for thousands of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from tests import factories as f
from tests.factories import workers  # noqa: F401 - workers is part of this module's kit

ALL_PASS = (("text", "pass"), ("timestamp", "pass"))


def review_brief(client, standin, api_key: str | None = None, *, quantity: int = 20,
                 unit_price_cents: int = 100, auto_approve_after_hours: int = 72) -> tuple[str, dict]:
    """A live, funded brief with one caption group and no per-worker limit; returns (api_key, brief)."""
    if api_key is None:
        _, api_key = f.sign_up_brand(client)
    group = {"kind": "caption", "name": "A", "quantity": quantity, "unit_price_cents": unit_price_cents,
             "instructions": "Write a caption", "proof": {"text": {"min_length": 5, "max_length": 300}}}
    budget = quantity * unit_price_cents * 2
    brief = f.live_brief(client, api_key, standin, task_groups=[group], budget_cents=budget,
                         auto_approve_after_hours=auto_approve_after_hours, target_cpa_cents=None)
    return api_key, brief


def claims(client, tokens: Sequence[str], group_id: str, n: int) -> list[str]:
    """n claims over HTTP, taken round-robin by the given workers; returns the claim ids."""
    return [f.claim(client, tokens[i % len(tokens)], group_id)["claim_id"] for i in range(n)]


def submit_claims(session, claim_ids: Sequence[str], *, status: str = "needs_review",
                  checks: Sequence[tuple[str, str]] = ALL_PASS, auto_approve_at: datetime | None = None,
                  screenshot: bool = False, text: str = "Lighter shoe, same grip #ad") -> list[str]:
    """Submission rows for active claims, in three statements; returns their ids, oldest first.

    Each gets the given check results. created_at steps by a microsecond in claim order, so the
    newest-first order is fixed. auto_approve_at defaults to submission time + the brief's hours.
    """
    session.execute(sa.text("""
        WITH picked AS (
            SELECT c.id AS claim_id, c.task_id, c.group_id, c.brief_id, c.worker_id, b.auto_approve_after_hours,
                   row_number() OVER (ORDER BY c.claimed_at, c.id) AS n, count(*) OVER () AS total
            FROM claims c JOIN briefs b ON b.id = c.brief_id
            WHERE c.id = ANY(:ids) AND c.status = 'active'
        ), submitted_claims AS (
            UPDATE claims SET status = 'submitted' WHERE id IN (SELECT claim_id FROM picked)
        ), submitted_tasks AS (
            UPDATE tasks SET status = 'submitted', updated_at = now() WHERE id IN (SELECT task_id FROM picked)
        )
        INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, text,
                                 captured_at, screenshot_key, submitted_at, auto_approve_at,
                                 validation_attempts, validated_at, created_at)
        SELECT 'sub_' || replace(gen_random_uuid()::text, '-', ''), task_id, claim_id, group_id, brief_id,
               worker_id, CAST(:status AS text), CAST(:text AS text) || ' ' || n, now() - interval '1 minute',
               CASE WHEN :screenshot THEN 'shots/' || claim_id END,
               now() - (total - n) * interval '1 microsecond',
               COALESCE(CAST(:auto_approve_at AS timestamptz),
                        now() + auto_approve_after_hours * interval '1 hour'),
               1, CASE WHEN CAST(:status AS text) <> 'validating' THEN now() END,
               now() - (total - n) * interval '1 microsecond'
        FROM picked
    """), {"ids": list(claim_ids), "status": status, "text": text, "screenshot": screenshot,
           "auto_approve_at": auto_approve_at})
    if checks:
        names = [name for name, _ in checks]
        outcomes = [outcome for _, outcome in checks]
        session.execute(sa.text("""
            INSERT INTO submission_checks (submission_id, name, outcome, detail, data, checked_at)
            SELECT s.id, c.name, c.outcome, c.name || ' check: ' || c.outcome, '{}', now()
            FROM submissions s CROSS JOIN unnest(CAST(:names AS text[]), CAST(:outcomes AS text[])) AS c(name, outcome)
            WHERE s.claim_id = ANY(:ids)
        """), {"ids": list(claim_ids), "names": names, "outcomes": outcomes})
    ids = list(session.execute(sa.text(
        "SELECT id FROM submissions WHERE claim_id = ANY(:ids) ORDER BY created_at, id"), {"ids": list(claim_ids)}
    ).scalars())
    session.commit()
    return ids


def submissions(client, session, brief: dict, n: int, tokens: Sequence[str], **kwargs) -> list[str]:
    """n submissions on the brief's first group: claims over HTTP, rows by submit_claims."""
    return submit_claims(session, claims(client, tokens, brief["task_groups"][0]["id"], n), **kwargs)


def bulk_workers(session, n: int) -> list[str]:
    """n workers in one INSERT (no credentials: they never log in)."""
    ids = list(session.execute(sa.text("""
        INSERT INTO workers (id, email, password_hash, display_name, country, created_at)
        SELECT 'wrk_' || replace(gen_random_uuid()::text, '-', ''),
               'bulk-' || replace(gen_random_uuid()::text, '-', '') || '@example.com', 'x', 'Worker ' || i, 'GB', now()
        FROM generate_series(1, :n) AS i
        RETURNING id
    """), {"n": n}).scalars())
    session.commit()
    return ids


def bulk_submissions(session, group_id: str, worker_ids: Sequence[str], n: int, **kwargs) -> list[str]:
    """n claims on the group's first open tasks (workers round-robin) in one statement, then their
    submissions by submit_claims: thousands of rows in a handful of statements."""
    claim_ids = list(session.execute(sa.text("""
        WITH picked AS (
            SELECT id, group_id, brief_id, seq FROM tasks
            WHERE group_id = :group AND status = 'open' ORDER BY seq LIMIT :n
        ), numbered AS (
            SELECT picked.*, (CAST(:workers AS text[]))[1 + (row_number() OVER (ORDER BY seq) - 1) % :wc] AS worker_id
            FROM picked
        ), claimed_tasks AS (
            UPDATE tasks t SET status = 'claimed', worker_id = numbered.worker_id, updated_at = now()
            FROM numbered WHERE t.id = numbered.id
        )
        INSERT INTO claims (id, task_id, group_id, brief_id, worker_id, tracked_code, status, claimed_at, expires_at)
        SELECT 'clm_' || replace(gen_random_uuid()::text, '-', ''), id, group_id, brief_id, worker_id,
               substr(md5(random()::text || id), 1, 12), 'active',
               now() + seq * interval '1 microsecond', now() + interval '1 hour'
        FROM numbered
        RETURNING id
    """), {"group": group_id, "n": n, "workers": list(worker_ids), "wc": len(worker_ids)}).scalars())
    session.commit()
    return submit_claims(session, claim_ids, **kwargs)


def set_aside_escrow(session, brief_id: str, leave_cents: int) -> int:
    """Move all but `leave_cents` of the brief's escrow to a pending refund (as cancelling does), so
    that approvals can run out of escrow; returns the amount set aside."""
    from marketplace.ledger import service as ledger
    from marketplace.payments.models import Payment, Refund

    payment = session.scalar(sa.select(Payment).where(Payment.brief_id == brief_id, Payment.status == "succeeded"))
    escrow = ledger.escrow(brief_id, payment.currency)
    amount = ledger.balance(escrow) - leave_cents
    refund = Refund(brief_id=brief_id, payment_id=payment.id, amount_cents=amount, currency=payment.currency)
    session.add(refund)
    session.flush()
    ledger.post("refund", refund.id, [(escrow, amount), (ledger.refund_pending(brief_id, payment.currency), -amount)])
    session.commit()
    return amount
