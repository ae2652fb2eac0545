"""Test data for payouts: workers with ready Stripe Connect accounts, and earnings from approved work.

Earnings are made the way approvals make them: a real funded brief, claims over HTTP, a minimal
approved submission row per claim and its "approval" ledger entry (escrow → worker, fee).
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.factories import auth, claim, live_brief, sign_up_brand, sign_up_worker, wait_for
from tests.factories.jobs import drain


def follow_onboarding_link(url: str) -> int:
    """What a worker's browser does with the link: the stand-in completes onboarding (no redirect follow)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def payout_account(client, token: str) -> dict:
    response = client.post("/v1/me/payout-account", headers=auth(token))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def ready_worker(client, standin) -> tuple[dict, str, str]:
    """A worker whose Connect account finished onboarding, as Stripe's account.updated webhook said."""
    worker, token = sign_up_worker(client)
    account = payout_account(client, token)
    follow_onboarding_link(account["onboarding_url"])
    wait_for(lambda: client.get("/v1/me/payout-account", headers=auth(token)).get_json()["payouts_enabled"])
    return worker, token, account["account_id"]


def earnings(client, token: str, currency: str = "usd") -> dict:
    response = client.get("/v1/me/earnings", headers=auth(token))
    assert response.status_code == 200, response.get_json()
    rows = {row["currency"]: row for row in response.get_json()["by_currency"]}
    return rows.get(currency) or {"currency": currency, "pending_review_cents": 0, "available_cents": 0,
                                  "in_transit_cents": 0, "paid_cents": 0, "bonus_cents": 0}


def approved_work(app, client, standin, workers: list[tuple[str, str]], price_cents: int,
                  status: str = "approved", funds_available: bool = True, api_key: str | None = None) -> str:
    """One approved submission (price_cents to the worker) per (worker_id, token); returns the brief id.

    status="needs_review" makes submissions awaiting review instead (no money moves).
    funds_available=False leaves the brand's card money pending at the stand-in, as it is live
    for the days after a payment. `api_key` makes the brief that brand's (a new brand's by default).
    """
    from marketplace.briefs.models import Brief, fee_for
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger
    from marketplace.proofs.models import Submission
    from marketplace.tasks.models import Claim, Task

    key = api_key or sign_up_brand(client)[1]
    quantity = len(workers)
    # A second group nobody claims: Stripe keeps 2.9% + 30¢ of the brand's payment, more than our
    # fee on a few cents of work, so a brief of only the paid tasks would leave the platform's
    # Stripe balance short of what it owes (as live, a platform's other funds cover that).
    brief = live_brief(client, key, standin, budget_cents=quantity * price_cents * 2 + 5000, task_groups=[
        {"kind": "caption", "quantity": quantity, "unit_price_cents": price_cents, "max_per_worker": 1,
         "instructions": "Write a caption"},
        {"kind": "caption", "quantity": 20, "unit_price_cents": 100, "max_per_worker": 1,
         "instructions": "Write another caption"}])
    # As live: the brand's card money is pending for days; by the time work is approved and paid
    # out, it is available (tests of the days in between fund and pay without this).
    if funds_available:
        standin.make_funds_available()
    group_id = brief["task_groups"][0]["id"]
    claims = [(worker_id, claim(client, token, group_id)) for worker_id, token in workers]
    with app.app_context():
        row = db.session.get(Brief, brief["id"])
        fee = fee_for(price_cents, row.fee_bps)
        for worker_id, made in claims:
            submission = Submission(task_id=made["task"]["id"], claim_id=made["claim_id"], group_id=group_id,
                                    brief_id=brief["id"], worker_id=worker_id, status=status,
                                    text="a caption for the payouts tests", auto_approve_at=utcnow())
            db.session.add(submission)
            db.session.flush()
            db.session.get(Claim, made["claim_id"]).status = "submitted"
            if status == "approved":
                submission.decided_at, submission.decided_by = utcnow(), "admin:factory"
                db.session.get(Task, made["task"]["id"]).status = "approved"
                ledger.post("approval", submission.id, [
                    (ledger.escrow(brief["id"], row.currency), price_cents + fee),
                    (ledger.worker_available(worker_id, row.currency), -price_cents),
                    (ledger.platform_fees(row.currency), -fee),
                ])
            else:
                db.session.get(Task, made["task"]["id"]).status = "submitted"
        db.session.commit()
        db.session.remove()
    return brief["id"]


def run_payout_jobs(app) -> None:
    drain(app, "payouts")


def create_and_pay_batch_in_process(barrier, results, currency: str, min_amount_cents: int) -> None:
    """Target of a spawned process: its own app and DB connection; waits at the barrier, then
    creates a batch and pays it, as `flask payouts run` does."""
    from marketplace import create_app
    from marketplace.extensions import db
    from marketplace.payouts import service

    app = create_app()
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connect before the barrier, so both start together
        db.session.rollback()
        barrier.wait(timeout=60)
        batch = service.create_batch(currency=currency, min_amount_cents=min_amount_cents, created_by="race")
        db.session.commit()
        service.process_batch(batch.id)
        results.put(batch.id)
