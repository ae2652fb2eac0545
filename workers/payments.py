"""Jobs for brief payments: completing briefs whose window closed, and refunds (those whose outcome
was unknown are looked up and, if Stripe has none, asked again)."""

from __future__ import annotations

from workers import job


@job
def settle_pending_refunds() -> dict:
    from marketplace.briefs import lifecycle
    from marketplace.payments import service

    outcomes: dict[str, int] = {"released_escrow_refunds": lifecycle.refund_released_escrow()}
    for refund_id in service.pending_refund_ids():
        outcome = service.settle_refund(refund_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@job
def complete_ended_briefs() -> dict:
    from marketplace.briefs import lifecycle

    return {"completed": lifecycle.complete_ended_briefs()}
