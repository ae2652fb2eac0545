"""Test data for results: approved work as the real approval leaves it, clicks and conversions over HTTP."""

from __future__ import annotations

import itertools
from datetime import timedelta

import sqlalchemy as sa

from tests.factories import auth, claim, workers  # noqa: F401 - workers is part of this module's kit
from tests.factories.jobs import drain


def claims(client, token: str, group_id: str, n: int) -> list[dict]:
    return [claim(client, token, group_id) for _ in range(n)]


def approve(app, held: list[dict], texts: list[str] | None = None, links: list[str | None] | None = None) -> list[str]:
    """Approve claimed tasks exactly as a review decision does: an approved submission per claim (task
    approved, claim submitted) and ONE "approval" ledger entry each, ref = the submission id: escrow
    debited price + fee, the worker's available balance credited the price, platform fees the fee."""
    from marketplace.briefs.models import fee_for
    from marketplace.db.clock import utcnow
    from marketplace.db.ids import new_id
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger

    now = utcnow()
    submission_ids = []
    with app.app_context():
        facts = {row.claim_id: row for row in db.session.execute(sa.text(
            "SELECT c.id AS claim_id, c.task_id, c.group_id, c.brief_id, c.worker_id, g.unit_price_cents, "
            "b.fee_bps, b.currency FROM claims c JOIN task_groups g ON g.id = c.group_id "
            "JOIN briefs b ON b.id = c.brief_id WHERE c.id = ANY(:ids)"), {"ids": [h["claim_id"] for h in held]})}
        rows, postings = [], []
        for i, h in enumerate(held):
            f = facts[h["claim_id"]]
            sub_id = new_id("sub")
            submission_ids.append(sub_id)
            rows.append({
                "id": sub_id, "task_id": f.task_id, "claim_id": f.claim_id, "group_id": f.group_id,
                "brief_id": f.brief_id, "worker_id": f.worker_id,
                "text": texts[i] if texts else f"A caption for the spring launch #{i} #ad",
                "link": links[i] if links else None,
                "submitted_at": now, "auto_approve_at": now + timedelta(hours=72), "decided_at": now,
                "decided_by": "admin:test", "created_at": now + timedelta(microseconds=i),
            })
            fee = fee_for(f.unit_price_cents, f.fee_bps)
            postings.append(ledger.Posting("approval", sub_id, (
                (ledger.escrow(f.brief_id, f.currency), f.unit_price_cents + fee),
                (ledger.worker_available(f.worker_id, f.currency), -f.unit_price_cents),
                (ledger.platform_fees(f.currency), -fee),
            )))
        db.session.execute(sa.text(
            "INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, text, link, "
            "submitted_at, auto_approve_at, validation_attempts, decided_at, decided_by, created_at) VALUES "
            "(:id, :task_id, :claim_id, :group_id, :brief_id, :worker_id, 'approved', :text, :link, :submitted_at, "
            ":auto_approve_at, 1, :decided_at, :decided_by, :created_at)"), rows)
        db.session.execute(sa.text("UPDATE tasks SET status = 'approved' WHERE id = ANY(:ids)"),
                           {"ids": [facts[h["claim_id"]].task_id for h in held]})
        db.session.execute(sa.text("UPDATE claims SET status = 'submitted' WHERE id = ANY(:ids)"),
                           {"ids": [h["claim_id"] for h in held]})
        ledger.post_many(postings)
        db.session.commit()
        db.session.remove()
    return submission_ids


_visitors = itertools.count()


def click(client, code: str, n: int = 1, ip: str | None = None, user_agent: str = "Mozilla/5.0 (test)") -> None:
    """n clicks on a tracked link, each by a visitor of its own (a fresh address) unless `ip` is given:
    a visitor's repeats within the window count once."""
    for _ in range(n):
        k = next(_visitors)
        address = ip or f"198.18.{k // 250 % 250}.{k % 250 + 1}"
        response = client.get(f"/t/{code}", headers={"User-Agent": user_agent}, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 302, response.get_data(as_text=True)


def conversion(code: str, external_id: str, value_cents: int, occurred_at: str = "2026-03-01T12:00:00Z", **over) -> dict:
    return {"code": code, "external_id": external_id, "value_cents": value_cents, "occurred_at": occurred_at, **over}


def post_conversions(client, brand_key: str, items: list[dict]) -> dict:
    response = client.post("/v1/conversions", json={"conversions": items}, headers=auth(brand_key))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["failed"] == 0, body
    return body


def run_jobs(app) -> None:
    """Run what is queued on the default queue (the stop rule)."""
    drain(app)
