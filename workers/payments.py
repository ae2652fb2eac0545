"""Jobs for brief payments: refunds whose outcome was unknown are asked again with the same key."""

from __future__ import annotations

from workers import job


@job
def settle_pending_refunds() -> dict:
    from marketplace.payments import service

    outcomes: dict[str, int] = {"released_escrow_refunds": service.refund_released_escrow()}
    for refund_id in service.pending_refund_ids():
        outcome = service.settle_refund(refund_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
