"""Bonuses over the HTTP API, and briefs with escrow to spare for them."""

from __future__ import annotations

from tests.factories.accounts import auth, sign_up_brand
from tests.factories.payouts import approved_work


def spare_escrow(app, brief_id: str) -> int:
    """Pause the brief's second group (as the stop rule does): its open tasks are no longer promised,
    so their money (tasks × price + fee) is unspent escrow. Returns what the escrow can spare."""
    from marketplace.auth.service import Principal
    from marketplace.bonuses import service as bonuses
    from marketplace.briefs.models import Brief
    from marketplace.briefs.service import pause_group
    from marketplace.extensions import db

    with app.app_context():
        brief = db.session.get(Brief, brief_id)
        pause_group(brief.task_groups[1].id, "Stop rule: CPA over 3x the target.")
        db.session.commit()
        spare = bonuses.unspent_cents(Principal("admin", "adm_test"), brief_id)
        db.session.remove()
    return spare


def bonus_brief(app, client, standin, workers: list[tuple[str, str]], price_cents: int = 200,
                spare: bool = True) -> tuple[str, str]:
    """A brand's live brief on which each of `workers` (id, token) has one approved submission; with
    `spare`, its second group (20 tasks at 100 cents + 10 fee) paused, so 2,200 cents can be spared.
    Returns (brand key, brief id)."""
    _, key = sign_up_brand(client)
    brief_id = approved_work(app, client, standin, workers, price_cents, api_key=key)
    if spare:
        assert spare_escrow(app, brief_id) == 2200
    return key, brief_id


def pay(client, key: str, brief_id: str, worker_id: str, amount_cents: int, reason: str = "Great clip, thank you",
        idempotency_key: str | None = None):
    headers = auth(key)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return client.post("/v1/bonuses", json={"brief_id": brief_id, "worker_id": worker_id,
                                            "amount_cents": amount_cents, "reason": reason}, headers=headers)
