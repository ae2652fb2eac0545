"""Payouts bench: a batch of 1,000 workers paid through the Stripe stand-in, time per transfer beside the stand-in's own."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

from bench import harness

WORKERS = int(os.environ.get("BENCH_PAYOUT_WORKERS", "1000"))
AMOUNT_CENTS = 1_234


def _seed(app, standin) -> None:
    """WORKERS workers with ready Connect accounts and an available balance, set-based."""
    import stripe

    from marketplace.extensions import db
    from marketplace.ledger import service as ledger
    from marketplace.payouts.models import PayoutAccount

    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": standin.url}, max_network_retries=0)
    with app.app_context():
        worker_ids = list(db.session.scalars(sa.text(
            "INSERT INTO workers (id, email, password_hash, display_name, country, created_at) "
            "SELECT 'wrk_' || replace(gen_random_uuid()::text, '-', ''), 'bench-' || n || '@example.com', "
            "'-', 'Bench ' || n, 'GB', now() FROM generate_series(1, :n) AS n RETURNING id"), {"n": WORKERS}))
        accounts = []
        for worker_id in worker_ids:  # the stand-in's accounts are made through its API, as Stripe's would be
            account = client.v1.accounts.create(params={
                "type": "express", "capabilities": {"transfers": {"requested": True}},
                "metadata": {"worker_id": worker_id}})
            standin.set_account_ready(account.id, True)
            accounts.append({"worker_id": worker_id, "stripe_account_id": account.id, "payouts_enabled": True,
                             "transfers_active": True, "details_submitted": True})
        db.session.execute(sa.insert(PayoutAccount), accounts)
        total = AMOUNT_CENTS * len(worker_ids)
        # As live, the stand-in's platform balance starts at zero and a transfer spends only what is
        # available: the money the seed books as our cash at Stripe is put there, available now.
        standin.set_balance(total)
        ledger.post("bench_seed", "bench", [(ledger.stripe_clearing("usd"), total)] + [
            (ledger.worker_available(w, "usd"), -AMOUNT_CENTS) for w in worker_ids])
        db.session.commit()


def main() -> None:
    with harness.scratch_database() as url, harness.stripe_standin() as (standin, stripe_env):
        app = harness.migrated_app(url, **stripe_env)
        started = time.perf_counter()
        _seed(app, standin)
        harness.note(f"seeded {WORKERS} workers with ready accounts and {AMOUNT_CENTS} cents each "
                     f"in {time.perf_counter() - started:.1f} s")

        from marketplace.extensions import db
        from marketplace.payouts import service

        with app.app_context():
            started = time.perf_counter()
            batch = service.create_batch(currency="usd", min_amount_cents=1, created_by="bench")
            db.session.commit()
            snapshot_s = time.perf_counter() - started
            started = time.perf_counter()
            summary = service.process_batch(batch.id)
            process_s = time.perf_counter() - started
            db.session.remove()

        assert summary["status"] == "completed", summary
        paid = summary["totals"]["paid_cents"]
        counts = standin.transfer_counts()
        assert counts["total"] == WORKERS and set(counts["counts"].values()) == {1}, "a transfer made twice"
        stats = standin.request_stats()["by_route"]["POST /v1/transfers"]
        per_transfer_ms = process_s * 1000 / WORKERS
        harness.report("payouts.batch", f"{WORKERS} transfers, ms each", per_transfer_ms, stats["mean_ms"],
                       unit="ms", baseline_name="stand-in handling", higher_is_better=False)
        harness.note(f"batch snapshot (aggregate + {WORKERS} items + {WORKERS} reserve entries) "
                     f"{snapshot_s * 1000:.0f} ms; processing {process_s:.2f} s; paid {paid} cents; "
                     f"stand-in median {stats['median_ms']} ms, max {stats['max_ms']} ms over {stats['count']} requests")
        bare_ms = _bare_client_ms(standin)
        harness.report("payouts.batch", "ms each vs bare stripe call", per_transfer_ms, bare_ms, unit="ms",
                       baseline_name="bare client", higher_is_better=False)
        harness.note("bare client = the same stripe library making transfers in a loop, no database: the gap to "
                     f"it is our bookkeeping (items marked sending in groups of {service.CLAIM_GROUP} before the calls, outcomes "
                     "and ledger entries booked per group in one commit)")


def _bare_client_ms(standin, n: int = 200) -> float:
    """Mean ms of a transfer made by the stripe library alone (idempotency key, metadata), same stand-in."""
    import stripe

    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": standin.url}, max_network_retries=0)
    account = client.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}}})
    standin.set_account_ready(account.id, True)
    standin.set_balance(standin.balance() + n)  # a cent for each transfer, available now
    started = time.perf_counter()
    for i in range(n):
        client.v1.transfers.create(
            params={"amount": 1, "currency": "usd", "destination": account.id, "transfer_group": "bare",
                    "metadata": {"payout_item_id": f"bare_{i}"}},
            options={"idempotency_key": f"bare-{i}"})
    return (time.perf_counter() - started) * 1000 / n


if __name__ == "__main__":
    main()
