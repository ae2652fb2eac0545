"""`flask demo`: an empty database filled with something to try the API on."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from marketplace.auth import service as accounts
from marketplace.auth.service import Principal
from marketplace.briefs import lifecycle
from marketplace.briefs import service as briefs
from marketplace.briefs.lifecycle import fund_offline
from marketplace.briefs.models import Brief
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict
from marketplace.extensions import db


def seed() -> list[str]:
    if db.session.scalar(sa.select(sa.func.count()).select_from(Brief)):
        raise Conflict("flask demo fills an empty database; this one already has briefs.")
    brand, brand_key = accounts.sign_up_brand("Demo Running Co", "brand@demo.example")
    now = utcnow()
    brief_id = briefs.create_brief(brand.id, {
        "title": "Spring launch: lighter shoe, same grip",
        "objective": "conversions",
        "audience": "runners 25-40 in the UK",
        "key_message": "lighter shoe, same grip",
        "hook": "Stop wasting money on heavy trainers",
        "offer": "20% off, first 100 buyers",
        "prohibitions": ["no competitor names"],
        "reference_url": "https://example.com/ref.mp4",
        "landing_url": "https://shop.example.com/spring",
        "budget_cents": 50000,
        "currency": "usd",
        "target_cpa_cents": 600,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=14),
        "auto_approve_after_hours": 72,
        "disclosure_required": True,
        "task_groups": [
            {"kind": "caption", "name": "A", "quantity": 150, "unit_price_cents": 60, "max_per_worker": 5,
             "instructions": "Write a caption that opens with the hook.",
             "proof": {"screenshot": "none", "text": {"required": True, "min_length": 20, "max_length": 300}}},
            {"kind": "caption", "name": "B", "quantity": 150, "unit_price_cents": 60, "max_per_worker": 5,
             "instructions": "Write a caption that leads with the offer.",
             "proof": {"screenshot": "none", "text": {"required": True, "min_length": 20, "max_length": 300}}},
            {"kind": "clip", "quantity": 100, "unit_price_cents": 100, "instructions": "Post a 15s clip.",
             "proof": {"screenshot": "required",
                       "link": {"required": True, "allowed_domains": ["tiktok.com", "instagram.com"]}}},
        ],
    })
    brief = db.session.get(Brief, brief_id)
    # Demo funding is booked as if Stripe had confirmed it, so the demo needs no Stripe at all.
    fund_offline(brief, "demo")
    lifecycle.publish(Principal("brand", brand.id), brief.id)
    worker = accounts.sign_up_worker("worker@demo.example", "demo-password-123", "Demo Worker", "GB")
    token, _ = accounts.log_in_worker("worker@demo.example", "demo-password-123")
    admin, admin_key = accounts.create_admin("admin@demo.example")
    states = _submissions_in_every_state(brief, Principal("admin", admin.id))
    return [
        f"Brand  {brand.id}  API key: {brand_key}",
        f"Brief  {brief.id}  (live, {brief.committed_cents} cents in escrow)",
        f"Worker {worker.id}  email worker@demo.example  password demo-password-123",
        f"       token: {token}",
        f"Admin  API key: {admin_key}",
        "Submissions: " + ", ".join(f"{status} {sub_id}" for status, sub_id in states.items()),
        "Try:   curl -H 'Authorization: Bearer <brand key>' http://127.0.0.1:5000/v1/briefs",
        "       (`flask payouts run` pays the approved work once workers have payout accounts)",
    ]


CAPTIONS = {
    "needs_review": "Lighter shoe, same grip: I ran 10k in them this morning #ad",
    "approved": "Stop wasting money on heavy trainers, these weigh nothing #ad",
    "rejected": "Great shoes, fast delivery, would buy again from this shop #ad",
    "revision_requested": "Twenty percent off for the first hundred buyers, go go go #ad",
    "auto_rejected": "No disclosure in this one, so the text check refuses it",
}


def _submissions_in_every_state(brief: Brief, admin: Principal) -> dict[str, str]:
    """One caption per submission state, through the same services the API calls.

    Validation runs here directly, in the foreground (the API's route enqueues it as a job instead).
    """
    from marketplace.proofs import service as proofs
    from marketplace.proofs.validation import validate_submission
    from marketplace.reviews import service as reviews
    from marketplace.tasks import service as claims

    group = brief.task_groups[0]
    made: dict[str, str] = {}
    for n, (state, caption) in enumerate(CAPTIONS.items()):
        worker = accounts.sign_up_worker(f"worker{n + 2}@demo.example", "demo-password-123", f"Worker {n + 2}", "GB")
        held = claims.claim(worker.id, group.id)
        submission = proofs.submit(worker.id, held.task_id, {"text": caption}, None)
        validate_submission(submission.id)
        made[state] = submission.id
    decisions = {"approved": ("approve", None), "rejected": ("reject", "off_brief"),
                 "revision_requested": ("request_revision", "low_quality")}
    for state, (decision, reason_code) in decisions.items():
        reviews.decide(admin, decision, submission_ids=[made[state]], reason_code=reason_code,
                       reason="Demo decision" if reason_code else None)
    worker = accounts.sign_up_worker("worker9@demo.example", "demo-password-123", "Worker 9", "GB")
    held = claims.claim(worker.id, group.id)
    made["claimed (no proof yet)"] = held.task_id
    return made
