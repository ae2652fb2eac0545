"""A brief's lifecycle, every move of it: fund, publish, pause, resume, cancel, complete (and what
closing does to its tasks and its escrow). Nothing else writes briefs.status.

The legal moves are `TRANSITIONS` in marketplace.briefs.models. The Stripe side of funding and
refunds (payments, PaymentIntents, refunds to the card) is marketplace.payments', called from here.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from marketplace.appeals import holds as appeal_holds
from marketplace.audit import service as audit
from marketplace.auth.service import Principal
from marketplace.briefs.models import CLOSED, TRANSITIONS, Brief, fee_for
from marketplace.briefs.service import get_brief
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict
from marketplace.events import service as events
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.queries import held_escrow_owners
from marketplace.payments import gateway
from marketplace.payments import service as payments
from marketplace.payments.models import Payment
from marketplace.tasks import lifecycle as tasks
from marketplace.tasks.service import held_task_counts

log = logging.getLogger(__name__)
COMPLETER = "system:complete-briefs"
REFUND_SWEEPER = "system:refund-sweep"


def transition(brief: Brief, action: str, reason: str | None = None) -> Brief:
    """Move a (locked) brief along its lifecycle, or 409 if the move is not allowed from here."""
    allowed_from, to = TRANSITIONS[action]
    if brief.status not in allowed_from:
        raise Conflict(f"Cannot {action} a brief that is {brief.status}.")
    brief.status = to
    brief.status_reason = reason
    now = utcnow()
    if to == "funded":
        brief.funded_at = now
    elif to == "live" and brief.published_at is None:
        brief.published_at = now
    elif to in ("completed", "cancelled"):
        brief.closed_at = now
    # Every move of a brief lands on a status with an event of its own name (publish and resume both: live).
    events.record(brief.brand_id, f"brief.{to}", brief_object(brief))
    return brief


def brief_object(brief: Brief) -> dict:
    """A brief as its events carry it: who, where it stands now and why."""
    return {"id": brief.id, "object": "brief", "title": brief.title, "status": brief.status,
            "reason": brief.status_reason, "budget_cents": brief.budget_cents, "currency": brief.currency}


# Funding ----------------------------------------------------------------------------------


def fund(principal: Principal, brief_id: str) -> dict:
    """A PaymentIntent for what the brief can spend (tasks + fees). Asking again reuses it."""
    while True:
        brief = get_brief(principal, brief_id, lock=True)
        if brief.status != "draft":
            raise Conflict(f"Only a draft brief can be funded; this one is {brief.status}.")
        funding = payments.funding_intent(
            brief.id, brief.committed_cents, brief.currency, f"Brief {brief.id}: {brief.title[:100]}",
            relock=lambda: get_brief(principal, brief_id, lock=True))
        if funding is not None:
            return funding


def on_payment_succeeded(event: gateway.WebhookEvent) -> None:
    """Stripe says a payment succeeded: book it into the brief's escrow."""
    received = payments.payment_succeeded(event)
    if received is not None:
        record_funding(*received)


def record_funding(payment: Payment, received_cents: int) -> None:
    """Book a succeeded payment into the brief's escrow once, and fund the brief if it covers it."""
    if payment.status == "succeeded" or received_cents <= 0:
        return
    brief = db.session.get(Brief, payment.brief_id, with_for_update=True)
    payments.mark_succeeded(payment)
    ledger.post(
        "funding",
        payment.id,
        [(ledger.stripe_clearing(payment.currency), received_cents),
         (ledger.escrow(brief.id, payment.currency), -received_cents)],
        memo=f"PaymentIntent {payment.stripe_payment_intent_id}",
    )
    if brief.status == "draft" and received_cents >= brief.committed_cents:
        transition(brief, "fund")
    elif brief.status == "draft":
        brief.status_reason = f"Payment of {received_cents} cents is less than the {brief.committed_cents} needed."
    else:
        # Paid after it was cancelled (or twice): the money sits in escrow, and cancelling
        # again or the refund sweep gives it back; nothing is lost.
        log.warning("brief %s was %s when payment %s succeeded", brief.id, brief.status, payment.id)


def fund_offline(brief: Brief, reference: str = "offline") -> Payment:
    """Fund a draft brief as Stripe's webhook would, with no Stripe at all: for `flask demo` and
    the benchmarks. The payment and its ledger entry are the same records a real one leaves."""
    payment = payments.offline_payment(brief.id, brief.committed_cents, brief.currency, reference)
    record_funding(payment, payment.amount_cents)
    db.session.commit()
    return payment


# Publishing and pausing ----------------------------------------------------------------------


def publish(principal: Principal, brief_id: str) -> Brief:
    brief = get_brief(principal, brief_id, lock=True)
    first_time = brief.published_at is None
    transition(brief, "publish")
    if first_time:
        tasks.create_tasks(brief.id)
    db.session.commit()
    return brief


def set_paused(principal: Principal, brief_id: str, paused: bool) -> Brief:
    brief = get_brief(principal, brief_id, lock=True)
    transition(brief, "pause" if paused else "resume")
    db.session.commit()
    return brief


# Closing: cancel, complete, and the refunds of what is not owed --------------------------------


def owed_cents(brief: Brief, now: datetime | None = None) -> int:
    """What the brief may still have to pay: claimed and submitted work, and rejections still
    inside their appeal window (an overturn is paid from here), with fees."""
    fee_by_group = {g.id: g.unit_price_cents + fee_for(g.unit_price_cents, brief.fee_bps) for g in brief.task_groups}
    held = sum(fee_by_group[group_id] * n for group_id, n in held_task_counts(brief.id).items())
    return held + appeal_holds.held_cents(brief, now or utcnow())


def cancel(principal: Principal, brief_id: str) -> Brief:
    """Cancel a brief, close its open tasks, and refund what is neither spent nor owed."""
    actor = f"{principal.role}:{principal.id}"
    brief = get_brief(principal, brief_id, lock=True)
    audit.record(actor, "brief.cancelled", brief.id, None, {"from_status": brief.status})
    return _close(brief, "cancel", actor=actor)


def complete_ended_briefs(now: datetime | None = None, limit: int = 100) -> list[str]:
    """Complete live and paused briefs whose window has closed, as cancelling does: open tasks
    close and what is neither spent nor owed is refunded. Work claimed or submitted before the
    end can still be submitted, reviewed and paid; what of it ends unpaid is refunded later by
    the refund sweep."""
    ids = db.session.scalars(
        sa.select(Brief.id).where(Brief.status.in_(["live", "paused"]), Brief.ends_at <= (now or utcnow()))
        .order_by(Brief.ends_at, Brief.id).limit(limit)
    ).all()
    db.session.rollback()
    completed = []
    for brief_id in ids:  # one at a time, each under its own lock, re-read
        brief = db.session.get(Brief, brief_id, with_for_update=True, populate_existing=True)
        if brief.status in ("live", "paused"):  # (not completed or cancelled meanwhile)
            _close(brief, "complete", reason="The brief's window closed.", actor=COMPLETER)
            completed.append(brief_id)
        else:
            db.session.rollback()
    return completed


def _close(brief: Brief, action: str, *, actor: str, reason: str | None = None) -> Brief:
    """End a locked brief (cancel or complete): its open tasks close and unowed escrow is refunded."""
    transition(brief, action, reason)
    tasks.close_open_tasks(brief.id)
    _refund_unowed(brief, actor=actor)
    return brief


def _refund_unowed(brief: Brief, *, actor: str, now: datetime | None = None) -> int:
    """Reserve what the (locked) brief's escrow holds beyond what it owes, commit, and ask Stripe
    for it. The number of refunds made."""
    refunds = [refund.id for refund in reserve_refunds(brief, actor=actor, now=now)]
    db.session.commit()
    for refund_id in refunds:
        payments.settle_refund(refund_id)
    return len(refunds)


def reserve_refunds(brief: Brief, *, actor: str, now: datetime | None = None) -> list:
    """Set aside escrow that is not owed as pending refunds, in the caller's transaction.

    The escrow is locked before anything is read: an approval locks it too and commits its task
    updates with its ledger lines, so the balance and what is still owed are read from the same
    moment. (Read unlocked, an approval committing between the two reads left its cost in the
    balance but out of what is owed, and refunded it.)
    """
    escrow = ledger.escrow(brief.id, brief.currency)
    held = ledger.locked_balances([escrow])
    refundable = held[escrow.code] - owed_cents(brief, now)
    if refundable <= 0:
        return []
    refunds = payments.reserve_refunds(brief.id, brief.currency, refundable, escrow=escrow, locked=held)
    for refund in refunds:
        audit.record(actor, "refund.reserved", refund.id, None, {
            "brief_id": brief.id, "payment_id": refund.payment_id, "amount_cents": refund.amount_cents,
            "currency": refund.currency})
    return refunds


def on_refund_failed(event: gateway.WebhookEvent) -> None:
    """A refund Stripe made failed later: its money goes back into the brief's escrow. The sweep
    does not refund that brief again by itself: the same card would fail again, and a person must
    find another way to pay the brand back."""
    refund = payments.refund_failed_later(event)
    if refund is None:
        return
    # The brief's lock, as the refund sweep takes it: the sweep either sees this failure or runs first.
    db.session.get(Brief, refund.brief_id, with_for_update=True)
    payments.book_refund_reversed(refund, event)


def refund_released_escrow(now: datetime | None = None) -> int:
    """Cancelled and completed briefs keep escrow for claimed and submitted work and for rejections
    inside their appeal window; when that work ends without being paid (expired, released,
    rejected) or the window ends, the money is no longer owed and goes back. An overturn locks the
    brief as this does, so the two never both spend the same money."""
    # Not a brief with a refund in flight, nor one whose refund Stripe refused or failed: the same
    # card would fail the same way every run; that brief waits for a person.
    unsettled = payments.unsettled_refund

    # Closed briefs that still hold escrow.
    candidates = held_escrow_owners(sa.select(Brief.id).where(Brief.status.in_(CLOSED), ~unsettled(Brief.id)))
    owed_nothing_more = 0
    for brief_id in candidates:
        brief = db.session.get(Brief, brief_id, with_for_update=True)
        if db.session.scalar(sa.select(unsettled(brief_id))):  # one failed or started since it was picked
            db.session.rollback()
            continue
        owed_nothing_more += bool(_refund_unowed(brief, actor=REFUND_SWEEPER, now=now))
    return owed_nothing_more
