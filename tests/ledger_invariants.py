"""The ledger's invariants as SQL: what must hold of the books after any test (conftest checks it)."""

from __future__ import annotations

import sqlalchemy as sa


def ledger_problems(engine) -> list[str]:
    """Money conservation, checked after every test that used the app.

    Every entry balances; all lines together sum to zero; no account (escrow, worker
    balances, fees) has a negative balance, except cash at Stripe, which goes below zero as
    Stripe's balance does when a refund returns money whose fee Stripe kept; cash at Stripe is,
    per currency, what we owe less Stripe's fees; and the ledger agrees with the records it
    books: every succeeded payment is funded once and its Stripe fee booked once, every refund
    booked by status.
    """
    checks = {
        "unbalanced entries": "SELECT entry_id, SUM(amount_cents) FROM ledger_lines GROUP BY entry_id "
                              "HAVING SUM(amount_cents) <> 0",
        "lines do not sum to zero": "SELECT SUM(amount_cents) FROM ledger_lines HAVING SUM(amount_cents) <> 0",
        "lines of no entry or no account": "SELECT l.id FROM ledger_lines l "
                                           "LEFT JOIN ledger_entries e ON e.id = l.entry_id "
                                           "LEFT JOIN ledger_accounts a ON a.id = l.account_id "
                                           "WHERE e.id IS NULL OR a.id IS NULL",
        "negative balances": "SELECT a.code, SUM(l.amount_cents) * CASE a.normal WHEN 'credit' THEN -1 ELSE 1 END AS bal "
                             "FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id "
                             "WHERE a.kind <> 'stripe_clearing' "
                             "GROUP BY a.code, a.normal "
                             "HAVING SUM(l.amount_cents) * CASE a.normal WHEN 'credit' THEN -1 ELSE 1 END < 0",
        "succeeded payments without a funding entry (or the reverse)": """
            SELECT p.id, e.id FROM payments p
            FULL JOIN (SELECT * FROM ledger_entries WHERE kind = 'funding') e ON e.ref_id = p.id
            WHERE (p.status = 'succeeded') IS DISTINCT FROM (e.id IS NOT NULL)""",
        "cash at Stripe that is not what we owe less Stripe's fees": """
            SELECT a.currency,
                   SUM(l.amount_cents) FILTER (WHERE a.kind = 'stripe_clearing') AS cash,
                   -SUM(l.amount_cents) FILTER (WHERE a.normal = 'credit') AS owed,
                   SUM(l.amount_cents) FILTER (WHERE a.kind = 'stripe_fees') AS fees
            FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id
            GROUP BY a.currency
            HAVING COALESCE(SUM(l.amount_cents) FILTER (WHERE a.kind = 'stripe_clearing'), 0)
                <> COALESCE(-SUM(l.amount_cents) FILTER (WHERE a.normal = 'credit'), 0)
                   - COALESCE(SUM(l.amount_cents) FILTER (WHERE a.kind = 'stripe_fees'), 0)""",
        "Stripe fees booked other than once per succeeded payment, at its balance transaction's fee": """
            SELECT p.id, p.status, p.stripe_fee_cents, f.cents FROM payments p
            FULL JOIN (SELECT e.ref_id, SUM(l.amount_cents) AS cents FROM ledger_entries e
                       JOIN ledger_lines l ON l.entry_id = e.id
                       JOIN ledger_accounts a ON a.id = l.account_id AND a.kind = 'stripe_fees'
                       WHERE e.kind = 'stripe_fee' GROUP BY e.ref_id) f ON f.ref_id = p.id
            WHERE COALESCE(f.cents, 0) <> CASE WHEN p.status = 'succeeded' THEN COALESCE(p.stripe_fee_cents, 0)
                                               ELSE 0 END""",
        "refunds whose entries do not match their status": """
            SELECT r.id, r.status, array_agg(e.kind ORDER BY e.kind) FROM refunds r
            LEFT JOIN ledger_entries e ON e.ref_id = r.id
            GROUP BY r.id, r.status
            HAVING array_agg(e.kind ORDER BY e.kind) <> CASE r.status
                WHEN 'pending' THEN ARRAY['refund']::varchar[]
                WHEN 'succeeded' THEN ARRAY['refund', 'refund_paid']::varchar[]
                -- failed: refused when asked, or failed later (made, then given back)
                ELSE CASE WHEN r.stripe_refund_id IS NULL THEN ARRAY['refund', 'refund_failed']::varchar[]
                          ELSE ARRAY['refund', 'refund_paid', 'refund_reversed']::varchar[] END END""",
    }
    checks.update(PAYOUT_CHECKS)
    checks.update(REVIEW_CHECKS)
    checks.update(BONUS_CHECKS)
    found = []
    with engine.connect() as conn:
        for name, query in checks.items():
            rows = conn.execute(sa.text(query)).all()
            if rows:
                found.append(f"{name}: {rows[:5]}")
    return found


# Payout items against the ledger: each item reserved once; paid, failed and reversed items booked
# as their status says (reversals book `payout_reversed` with ref "<item id>:<cumulative cents>");
# and every worker's in-transit balance equals their items still pending, sending or held.
PAYOUT_CHECKS = {
    "payout items whose entries do not match their status": """
        SELECT i.id, i.status, k.kinds FROM payout_items i
        LEFT JOIN LATERAL (
            SELECT array_agg(DISTINCT e.kind ORDER BY e.kind) AS kinds,
                   count(*) FILTER (WHERE e.kind <> 'payout_reversed') AS singles
            FROM ledger_entries e WHERE e.ref_id = i.id OR e.ref_id LIKE i.id || ':%') k ON true
        WHERE k.kinds IS DISTINCT FROM CASE i.status
            WHEN 'paid' THEN ARRAY['payout_paid', 'payout_reserve']::varchar[]
            WHEN 'failed' THEN ARRAY['payout_failed', 'payout_reserve']::varchar[]
            WHEN 'reversed' THEN ARRAY['payout_paid', 'payout_reserve', 'payout_reversed']::varchar[]
            ELSE ARRAY['payout_reserve']::varchar[] END
           OR k.singles <> CASE WHEN i.status IN ('pending', 'sending', 'held') THEN 1 ELSE 2 END""",
    "workers' in-transit balances that differ from their unsettled payout items": """
        WITH transit AS (
            SELECT a.owner_id AS worker_id, a.currency, -SUM(l.amount_cents) AS cents
            FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id
            WHERE a.kind = 'worker_in_transit' GROUP BY a.owner_id, a.currency),
        unsettled AS (
            SELECT worker_id, currency, SUM(amount_cents) AS cents FROM payout_items
            WHERE status IN ('pending', 'sending', 'held') GROUP BY worker_id, currency)
        SELECT COALESCE(t.worker_id, u.worker_id), t.cents, u.cents
        FROM transit t FULL JOIN unsettled u ON u.worker_id = t.worker_id AND u.currency = t.currency
        WHERE COALESCE(t.cents, 0) <> COALESCE(u.cents, 0)""",
}


# Approvals against the ledger: every approved (or paid) submission has exactly one "approval"
# entry, and every approval entry of an existing submission is for an approved (or paid) one.
# (Approval entries whose ref is no submission at all are not flagged: tests/test_ledger.py books
# such entries on made-up ids to test the ledger alone.)
REVIEW_CHECKS = {
    "approved submissions without exactly one approval entry, or approval entries of unapproved ones": """
        SELECT s.id, s.status, count(e.id) FROM submissions s
        LEFT JOIN ledger_entries e ON e.kind = 'approval' AND e.ref_id = s.id
        GROUP BY s.id, s.status
        HAVING count(e.id) <> CASE WHEN s.status IN ('approved', 'paid') THEN 1 ELSE 0 END""",
}


# Bonuses against the ledger: each bonus booked once, by the entry kind of its own kind, for its
# amount, from its brief's escrow to its worker's available balance; no bonus entry without a bonus;
# and no task's performance bonuses above its group's cap.
BONUS_CHECKS = {
    "bonuses not booked exactly once, at their amount, escrow to worker": """
        SELECT b.id, b.kind, count(DISTINCT e.id), sum(l.amount_cents) FILTER (WHERE a.code = 'escrow:' || b.brief_id),
               sum(l.amount_cents) FILTER (WHERE a.kind = 'worker_available' AND a.owner_id = b.worker_id)
        FROM bonuses b
        LEFT JOIN ledger_entries e ON e.ref_id = b.id
             AND e.kind = CASE b.kind WHEN 'one_off' THEN 'bonus' ELSE 'performance_bonus' END
        LEFT JOIN ledger_lines l ON l.entry_id = e.id
        LEFT JOIN ledger_accounts a ON a.id = l.account_id
        GROUP BY b.id, b.kind, b.amount_cents
        HAVING count(DISTINCT e.id) <> 1 OR count(l.id) <> 2
            OR sum(l.amount_cents) FILTER (WHERE a.code = 'escrow:' || b.brief_id) IS DISTINCT FROM b.amount_cents
            OR sum(l.amount_cents) FILTER (WHERE a.kind = 'worker_available' AND a.owner_id = b.worker_id)
               IS DISTINCT FROM -b.amount_cents""",
    "bonus entries of no bonus": """
        SELECT e.id, e.kind, e.ref_id FROM ledger_entries e
        LEFT JOIN bonuses b ON b.id = e.ref_id
        WHERE e.kind IN ('bonus', 'performance_bonus') AND b.id IS NULL""",
    "tasks whose performance bonuses exceed their group's cap": """
        SELECT b.task_id, sum(b.amount_cents), g.bonus_max_per_task_cents FROM bonuses b
        JOIN task_groups g ON g.id = b.group_id
        WHERE b.kind = 'performance'
        GROUP BY b.task_id, g.bonus_max_per_task_cents
        HAVING sum(b.amount_cents) > g.bonus_max_per_task_cents""",
}
