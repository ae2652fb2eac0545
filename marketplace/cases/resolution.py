"""What a person does with a case: retry it (through the owner of the money it is about) or settle
it with a reason. Every action is an audit row in the transaction that takes it."""

from __future__ import annotations

from marketplace.audit import service as audit
from marketplace.cases import service as cases
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict, InvalidInput
from marketplace.extensions import db
from marketplace.payments import service as payments
from marketplace.payouts import service as payouts

SETTLE_OUTCOMES = {"refund_failed": (None,), "transfer_mismatch": ("paid", "failed")}


def retry(case_id: str, *, actor: str, reason: str | None) -> dict:
    """refund_failed: a new attempt of the refund (its idempotency key: the first refund and the
    attempt number), only when every earlier attempt failed, made at Stripe now; the case resolves
    when Stripe makes it and opens again when it fails. transfer_mismatch: look the item's transfer
    up at Stripe again (its batch's run reconciles it); resolved if it now matches."""
    case = cases.locked(case_id)
    if not cases.move(case, "retry", "retrying"):
        raise Conflict(f"Case {case_id} is {case.status}: only an open case can be retried.")
    case.attempts += 1
    if case.kind == "refund_failed":
        refund = payments.start_refund_retry(case.subject_id)
        audit.record(actor, "case.retry", case.id, reason, {"refund_id": refund.id, "attempt": refund.attempt,
                                                           "idempotency_key": payments.refund_idempotency_key(refund)})
        db.session.commit()
        outcome = payments.settle_refund(refund.id)  # books the outcome, resolving or reopening the case
        if outcome == "pending":  # Stripe's answer was lost: the refund job looks it up and settles it
            db.session.rollback()
    else:
        audit.record(actor, "case.retry", case.id, reason, {"payout_item_id": case.subject_id})
        batch_id = payouts.item_batch(case.subject_id)
        db.session.commit()
        payouts.process_batch(batch_id, unknown_retries=0)
        case = cases.locked(case_id)
        if payouts.item_settled(case.subject_id):
            cases.resolve_case(case.kind, case.subject_id, actor="reconcile", detail="The transfer now matches the item.")
        else:
            cases.move(case, "open", "open")
        db.session.commit()
    return cases.get_case(case_id)


def settle(case_id: str, *, actor: str, reason: str, outcome: str | None) -> dict:
    """A person settled the case outside the system (and says how): closed, with who and why.
    A transfer_mismatch needs the item's outcome: paid (by the transfer Stripe holds) or failed
    (its money back to the worker's available balance)."""
    case = cases.locked(case_id)
    allowed = SETTLE_OUTCOMES[case.kind]
    if outcome not in allowed:
        raise InvalidInput.field("outcome", f"A {case.kind} case takes no outcome." if allowed == (None,)
                                 else f"A {case.kind} case is settled with outcome 'paid' or 'failed'.")
    if not cases.move(case, "settle", "settled"):
        raise Conflict(f"Case {case_id} is {case.status}: only an open case can be settled.")
    case.closed_at, case.closed_by = utcnow(), actor
    batch_id = None
    if case.kind == "transfer_mismatch":
        batch_id = payouts.settle_item_by_person(case.subject_id, outcome, case.stripe_object_id, reason)
    audit.record(actor, "case.settle", case.id, reason, {"outcome": outcome, "subject_id": case.subject_id})
    db.session.commit()
    if batch_id:
        payouts.finish_if_done(batch_id)
    return cases.get_case(case_id)
