"""Claims per second under 16 concurrent clients against gunicorn, as a ratio of a bare endpoint."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from bench.harness import (
    CORES_NOTE,
    Request,
    gunicorn_server,
    live_brief,
    load,
    migrated_app,
    note,
    report,
    scratch_database,
    server_env,
    spare_redis,
)

CLIENTS = 16
SECONDS = 8.0
TASKS = 50_000  # more than 16 clients can claim in the run, so no claim meets an empty group


# The eligibility-on variant's rules, which the bench's workers pass (GB, writing English, nobody
# excluded but an outsider; min_approved 0 still runs the approved count). No min_approval_rate:
# new workers have no rate yet, and a rate rule keeps them out.
def eligibility(outsider: str) -> dict:
    return {"countries": ["GB", "FR"], "languages": ["en"], "min_approved": 0, "exclude_workers": [outsider]}


def seed(app) -> tuple[str, str, str, list[str]]:
    """A live brief with one big open group and one as big behind eligibility rules, a live brief as
    big with promo codes, and one worker token per client; returns (open group id, eligibility group
    id, promo group id, tokens)."""
    from marketplace.auth import service as accounts
    from marketplace.db.clock import utcnow
    from marketplace.workforce import profile

    with app.app_context():
        brand, _ = accounts.sign_up_brand("Bench Co", "brand@bench.example")
        outsider = accounts.sign_up_worker("outsider@bench.example", "bench-password-123", "Outsider", "GB")
        now = utcnow()
        brief = live_brief(brand.id, {
            "title": "Bench captions", "objective": "engagement", "landing_url": "https://shop.example.com/",
            "budget_cents": 2 * TASKS * 20, "currency": "usd", "starts_at": now - timedelta(hours=1),
            "ends_at": now + timedelta(days=1), "auto_approve_after_hours": 72, "disclosure_required": True,
            "prohibitions": [], "task_groups": [
                {"kind": "caption", "quantity": TASKS, "unit_price_cents": 10, "instructions": "Write a caption",
                 "proof": {}},
                {"kind": "caption", "quantity": TASKS, "unit_price_cents": 10, "instructions": "Write a caption",
                 "proof": {}, "eligibility": eligibility(outsider.id)}],
        })
        open_group, eligible_group = (g.id for g in sorted(brief.task_groups, key=lambda g: g.position))
        promo = live_brief(brand.id, {
            "title": "Bench promo captions", "objective": "conversions", "landing_url": "https://shop.example.com/",
            "budget_cents": TASKS * 20, "currency": "usd", "starts_at": now - timedelta(hours=1),
            "ends_at": now + timedelta(days=1), "auto_approve_after_hours": 72, "disclosure_required": True,
            "prohibitions": [], "promo_codes": True, "task_groups": [
                {"kind": "caption", "quantity": TASKS, "unit_price_cents": 10, "instructions": "Write a caption",
                 "proof": {}}],
        })
        promo_group = promo.task_groups[0].id
        tokens = []
        for i in range(CLIENTS):
            worker = accounts.sign_up_worker(f"w{i}@bench.example", "bench-password-123", f"Worker {i}", "GB")
            profile.update_profile(worker.id, {"languages": ["en"]})
            tokens.append(accounts.log_in_worker(f"w{i}@bench.example", "bench-password-123")[0])
        return open_group, eligible_group, promo_group, tokens


def main() -> None:
    with scratch_database() as database_url, spare_redis() as redis_url:
        app = migrated_app(database_url)
        group_id, eligible_group, promo_group, tokens = seed(app)
        # The limiter stays in the path (a Redis round trip per claim) but never refuses.
        env = server_env(database_url, redis_url, CLAIM_RATE_LIMIT="1000000/minute")
        with gunicorn_server(env, workers=2) as base:
            bare = load(f"{base}/bench/bare", concurrency=CLIENTS, duration=SECONDS)

            def claim_request(i: int) -> Request:
                return Request("POST", f"{base}/v1/task-groups/{group_id}/claim",
                               {"Authorization": f"Bearer {tokens[i % CLIENTS]}"})

            claims = load(claim_request, concurrency=CLIENTS, duration=SECONDS)

            def eligible_claim_request(i: int) -> Request:
                return Request("POST", f"{base}/v1/task-groups/{eligible_group}/claim",
                               {"Authorization": f"Bearer {tokens[i % CLIENTS]}"})

            eligible_claims = load(eligible_claim_request, concurrency=CLIENTS, duration=SECONDS)

            def promo_claim_request(i: int) -> Request:
                return Request("POST", f"{base}/v1/task-groups/{promo_group}/claim",
                               {"Authorization": f"Bearer {tokens[i % CLIENTS]}"})

            promo_claims = load(promo_claim_request, concurrency=CLIENTS, duration=SECONDS)

            def listing_request(i: int) -> Request:
                return Request("GET", f"{base}/v1/tasks", {"Authorization": f"Bearer {tokens[i % CLIENTS]}"})

            listing = load(listing_request, concurrency=CLIENTS, duration=SECONDS)
            # The same listing with the eligibility group's rules taken away (the listed groups are
            # the same: the bench's workers pass the rules): what the rules cost the listing.
            with app.app_context():
                from marketplace.extensions import db

                for table in ("group_eligibility_values", "group_eligibility"):
                    db.session.execute(sa.text(f"DELETE FROM {table} WHERE group_id = :g"), {"g": eligible_group})
                db.session.commit()
                db.engine.dispose()
            listing_no_rules = load(listing_request, concurrency=CLIENTS, duration=SECONDS)
        report("claims", f"POST claim, {CLIENTS} clients", claims.rps, bare.rps)
        note(f"claim: {claims.summary()}")
        note(f"bare:  {bare.summary()}")
        report("claims.eligibility", f"POST claim, eligibility on, {CLIENTS} clients", eligible_claims.rps, bare.rps)
        note(f"claim, eligibility on: {eligible_claims.summary()}")
        report("claims.promo", f"POST claim, promo codes, {CLIENTS} clients", promo_claims.rps, bare.rps)
        note(f"claim, promo codes: {promo_claims.summary()}")
        report("claims.listing", "GET /v1/tasks", listing.rps, bare.rps)
        note(f"listing: {listing.summary()}")
        report("claims.listing.eligibility", "GET /v1/tasks, rules on vs off", listing.rps, listing_no_rules.rps,
               baseline_name="no rules")
        note(f"listing, no eligibility rules: {listing_no_rules.summary()}")
        with app.app_context():
            from marketplace.extensions import db

            held, distinct, codes, distinct_codes = db.session.execute(sa.text(
                "SELECT count(*), count(DISTINCT task_id), count(promo_code), count(DISTINCT promo_code) "
                "FROM claims WHERE status = 'active'")).one()
            db.engine.dispose()
        ok = (claims.statuses.get(201, 0) + eligible_claims.statuses.get(201, 0)
              + promo_claims.statuses.get(201, 0))  # the warm-ups' are held too
        note(f"check: {ok} claims answered 201 (plus the warm-up's), {held} held in the database, "
             f"{distinct} distinct tasks, {codes} promo codes ({distinct_codes} distinct)"
             + ("" if held == distinct and held >= ok and codes == distinct_codes else "  MISMATCH"))
        note(CORES_NOTE)


if __name__ == "__main__":
    main()
