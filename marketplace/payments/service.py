"""Funding briefs through Stripe, refunding what a cancelled or completed brief did not spend, and Stripe's webhooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from marketplace.auth.service import Principal
from marketplace.briefs import service as briefs
from marketplace.briefs.models import CLOSED, Brief, Task, fee_for
from marketplace.db.clock import utcnow
from marketplace.errors import BadGateway, Conflict, InvalidInput, ServiceUnavailable
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.queries import held_escrow_owners
from marketplace.payments import gateway
from marketplace.payments.models import Payment, Refund, StripeEvent

log = logging.getLogger(__name__)


# Funding ----------------------------------------------------------------------------------


def start_funding(principal: Principal, brief_id: str) -> dict:
    """A PaymentIntent for what the brief can spend (tasks + fees). Asking again reuses it."""
    brief = briefs.get_brief(principal, brief_id, lock=True)
    if brief.status != "draft":
        raise Conflict(f"Only a draft brief can be funded; this one is {brief.status}.")
    payment = db.session.scalar(
        sa.select(Payment).where(Payment.brief_id == brief.id, Payment.status.in_(["created", "requires_payment"]))
    )
    if payment is None or payment.amount_cents != brief.committed_cents:
        if payment is not None:
            payment.status = "superseded"
        payment = Payment(brief_id=brief.id, amount_cents=brief.committed_cents, currency=brief.currency)
        db.session.add(payment)
    # The row (and so the idempotency key) is saved before Stripe is called: a retry after
    # a crash sends the same key and gets the same PaymentIntent back.
    db.session.commit()

    if payment.stripe_payment_intent_id is not None:
        # The intent made before is the one to pay, however long ago (Stripe's key lasts a day: asked
        # again with it after that, Stripe would make a second intent the brand could pay as well).
        intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
        if intent.status != "canceled":
            return _funding_out(payment, intent)
        # Canceled at Stripe: a new payment, a new intent. Under the brief's lock again, and only
        # if no concurrent request replaced it first (else two intents could both be paid).
        brief = briefs.get_brief(principal, brief_id, lock=True)
        replaced = db.session.execute(
            sa.update(Payment).where(Payment.id == payment.id, Payment.status.in_(["created", "requires_payment"]))
            .values(status="superseded")
        ).rowcount
        if not replaced:
            db.session.rollback()
            return start_funding(principal, brief_id)  # hand out the one the other request made
        payment = Payment(brief_id=brief.id, amount_cents=brief.committed_cents, currency=brief.currency)
        db.session.add(payment)
        db.session.commit()
    try:
        intent = gateway.create_payment_intent(
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            idempotency_key=f"fund-{payment.id}",
            metadata={"payment_id": payment.id, "brief_id": brief.id},
            description=f"Brief {brief.id}: {brief.title[:100]}",
        )
    except (gateway.InvalidRequestError, gateway.CardError) as exc:
        # What Stripe will not charge (an amount under its minimum, a currency it does not take)
        # is the brief's to change: 422 with Stripe's reason, and no payment left behind.
        db.session.execute(sa.delete(Payment).where(Payment.id == payment.id,
                                                    Payment.stripe_payment_intent_id.is_(None)))
        db.session.commit()
        raise InvalidInput(f"Stripe refused the payment: {gateway.refusal(exc)}",
                           errors={_refused_field(exc): [gateway.refusal(exc)]}) from None
    except gateway.StripeError as exc:
        raise BadGateway(f"The payment provider refused the request: {gateway.refusal(exc)}") from None
    # Only if still as we left it: the success webhook may have come first and booked it.
    db.session.execute(
        sa.update(Payment).where(Payment.id == payment.id, Payment.status == "created")
        .values(stripe_payment_intent_id=intent.id, status="requires_payment")
    )
    db.session.commit()
    return _funding_out(payment, intent)


def _funding_out(payment: Payment, intent) -> dict:
    return {
        "payment_id": payment.id,
        "payment_intent_id": intent.id,
        "client_secret": intent.client_secret,
        "amount_cents": payment.amount_cents,
        "currency": payment.currency,
    }


def _refused_field(exc: Exception) -> str:
    """The brief's field a Stripe refusal is about (its `param`: amount → budget, currency)."""
    return {"amount": "budget_cents", "currency": "currency"}.get(getattr(exc, "param", None) or "", "budget_cents")


def record_for_event(event: gateway.WebhookEvent, model, stripe_id, metadata_key: str):
    """Our row that a Stripe event's object belongs to, locked for the handler's transaction (so
    two events about one object are handled one after the other, each seeing the other's result):
    found by the object's Stripe id, else by our own id in its metadata (the event can arrive
    before we stored Stripe's id)."""
    obj = event.object
    if not obj.get("id"):
        return None  # (`stripe_id == None` would be IS NULL: any row not yet sent)
    row = db.session.scalar(sa.select(model).where(stripe_id == obj.get("id")).with_for_update())
    if row is None:
        our_id = (obj.get("metadata") or {}).get(metadata_key)
        row = db.session.get(model, our_id, with_for_update=True) if our_id else None
    return row


def _payment_succeeded(event: gateway.WebhookEvent) -> None:
    obj = event.object
    payment = record_for_event(event, Payment, Payment.stripe_payment_intent_id, "payment_id")
    if payment is None:
        log.warning("payment_intent.succeeded for an intent we did not make: %s", obj.get("id"))
        return
    if obj.get("currency") != payment.currency:
        log.error("payment %s succeeded in an unexpected currency; left for a person", payment.id)
        return
    if payment.stripe_payment_intent_id not in (None, obj.get("id")):
        # Money came in on another intent naming our payment (one made before ours was recorded,
        # say): it is money received all the same, booked as a payment of its own, so that it is
        # in the escrow and a refund can find the charge it came from.
        log.warning("payment %s: intent %s succeeded beside %s; booked as its own payment", payment.id,
                    obj.get("id"), payment.stripe_payment_intent_id)
        payment = Payment(brief_id=payment.brief_id, amount_cents=int(obj.get("amount") or 0),
                          currency=payment.currency, stripe_payment_intent_id=obj.get("id"), status="requires_payment")
        db.session.add(payment)
        db.session.flush()
    payment.stripe_payment_intent_id = payment.stripe_payment_intent_id or obj.get("id")
    record_funding(payment, int(obj.get("amount_received") or obj.get("amount") or 0))


def record_funding(payment: Payment, received_cents: int) -> None:
    """Book a succeeded payment into the brief's escrow once, and fund the brief if it covers it."""
    if payment.status == "succeeded" or received_cents <= 0:
        return
    brief = db.session.get(Brief, payment.brief_id, with_for_update=True)
    payment.status = "succeeded"
    payment.succeeded_at = utcnow()
    ledger.post(
        "funding",
        payment.id,
        [(ledger.stripe_clearing(payment.currency), received_cents),
         (ledger.escrow(brief.id, payment.currency), -received_cents)],
        memo=f"PaymentIntent {payment.stripe_payment_intent_id}",
    )
    if brief.status == "draft" and received_cents >= brief.committed_cents:
        briefs.transition(brief, "fund")
    elif brief.status == "draft":
        brief.status_reason = f"Payment of {received_cents} cents is less than the {brief.committed_cents} needed."
    else:
        # Paid after it was cancelled (or twice): the money sits in escrow, and cancelling
        # again or the refund sweep gives it back; nothing is lost.
        log.warning("brief %s was %s when payment %s succeeded", brief.id, brief.status, payment.id)


def _payment_failed(event: gateway.WebhookEvent) -> None:
    """An attempt to pay failed (a declined card). Stripe puts the PaymentIntent back to
    requires_payment_method, and the brand's client may try again with the same client secret, so
    nothing of ours changes: the payment stays payable and POST /fund hands out the same intent.
    (Ending it here would make /fund create a second intent while the first could still be paid.)"""
    error = event.object.get("last_payment_error") or {}
    log.info("payment intent %s: an attempt failed (%s); it stays payable", event.object.get("id"),
             error.get("code") or error.get("decline_code") or "no reason given")


def fund_offline(brief: Brief, reference: str = "offline") -> Payment:
    """Fund a draft brief as Stripe's webhook would, with no Stripe at all: for `flask demo` and
    the benchmarks. The payment and its ledger entry are the same records a real one leaves."""
    payment = Payment(brief_id=brief.id, amount_cents=brief.committed_cents, currency=brief.currency,
                      stripe_payment_intent_id=f"pi_{reference}_{brief.id[-12:]}", status="requires_payment")
    db.session.add(payment)
    db.session.flush()
    record_funding(payment, payment.amount_cents)
    db.session.commit()
    return payment


# Cancelling and refunds --------------------------------------------------------------------


def owed_cents(brief: Brief) -> int:
    """What the brief may still have to pay: claimed and submitted work, with fees."""
    fee_by_group = {g.id: g.unit_price_cents + fee_for(g.unit_price_cents, brief.fee_bps) for g in brief.task_groups}
    rows = db.session.execute(
        sa.select(Task.group_id, sa.func.count())
        .where(Task.brief_id == brief.id, Task.status.in_(["claimed", "submitted"]))
        .group_by(Task.group_id)
    )
    return sum(fee_by_group[group_id] * n for group_id, n in rows)


def cancel(principal: Principal, brief_id: str) -> Brief:
    """Cancel a brief, close its open tasks, and refund what is neither spent nor owed."""
    return _close(briefs.get_brief(principal, brief_id, lock=True), "cancel")


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
            _close(brief, "complete", reason="The brief's window closed.")
            completed.append(brief_id)
        else:
            db.session.rollback()
    return completed


def _close(brief: Brief, action: str, reason: str | None = None) -> Brief:
    """End a locked brief (cancel or complete): its open tasks close and unowed escrow is refunded."""
    briefs.transition(brief, action, reason)
    db.session.execute(sa.update(Task).where(Task.brief_id == brief.id, Task.status == "open").values(status="cancelled"))
    _refund_unowed(brief)
    return brief


def _refund_unowed(brief: Brief) -> int:
    """Reserve what the (locked) brief's escrow holds beyond what it owes, commit, and ask Stripe
    for it. The number of refunds made."""
    refunds = [refund.id for refund in reserve_refunds(brief)]
    db.session.commit()
    for refund_id in refunds:
        settle_refund(refund_id)
    return len(refunds)


def reserve_refunds(brief: Brief) -> list[Refund]:
    """Set aside escrow that is not owed as pending refunds, in the caller's transaction.

    The escrow is locked before anything is read: an approval locks it too and commits its task
    updates with its ledger lines, so the balance and what is still owed are read from the same
    moment. (Read unlocked, an approval committing between the two reads left its cost in the
    balance but out of what is owed, and refunded it.) A refund goes back to the card it came
    from and Stripe refunds no more than a charge took, so a brief paid more than once (a second
    payment after it was cancelled, say) gets one refund per payment, oldest first, each at most
    what that payment has left after its earlier refunds.
    """
    escrow = ledger.escrow(brief.id, brief.currency)
    held = ledger.locked_balances([escrow])
    refundable = held[escrow.code] - owed_cents(brief)
    if refundable <= 0:
        return []
    refunded = (
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0))
        .where(Refund.payment_id == Payment.id, Refund.status.in_(["pending", "succeeded"]))
        .scalar_subquery()
    )
    payments = db.session.execute(
        sa.select(Payment.id, Payment.amount_cents - refunded)
        .where(Payment.brief_id == brief.id, Payment.status == "succeeded")
        .order_by(Payment.created_at, Payment.id)
    ).all()
    refunds = []
    for payment_id, left in payments:
        amount = min(refundable, int(left))
        if amount <= 0:
            continue
        refunds.append(Refund(brief_id=brief.id, payment_id=payment_id, amount_cents=amount, currency=brief.currency))
        refundable -= amount
    if refundable > 0:  # more in escrow than every payment brought in: not ours to guess at
        log.error("brief %s: %d cents refundable beyond its payments; left for a person", brief.id, refundable)
    if not refunds:
        return []
    db.session.add_all(refunds)
    db.session.flush()
    ledger.post_many([ledger.Posting(
        "refund", refund.id,
        ((escrow, refund.amount_cents), (ledger.refund_pending(brief.id, brief.currency), -refund.amount_cents)),
        memo="set aside for refund",
    ) for refund in refunds], locked=held)
    return refunds


def settle_refund(refund_id: str) -> str:
    """Ask Stripe for a pending refund and book the outcome, once.

    The row is locked meanwhile, so the job and a cancel settling the same refund take turns.
    Stripe keeps idempotency keys for 24 hours only, so our row, not the key, is the guard: the
    PaymentIntent's refunds are looked up first (ours carry our id in metadata), and a refund is
    created only when Stripe has none for this row.
    """
    refund = db.session.get(Refund, refund_id, with_for_update=True, populate_existing=True)
    if refund is None or refund.status != "pending":
        db.session.rollback()
        return refund.status if refund else "missing"
    payment = db.session.get(Payment, refund.payment_id)
    try:
        stripe_refund = next((r for r in gateway.list_refunds(payment.stripe_payment_intent_id)
                              if gateway.our_id(r, "refund_id") == refund.id), None)
        if stripe_refund is None:
            stripe_refund = gateway.create_refund(
                payment_intent_id=payment.stripe_payment_intent_id,
                amount_cents=refund.amount_cents,
                idempotency_key=f"refund-{refund.id}",
                metadata={"refund_id": refund.id, "brief_id": refund.brief_id},
            )
    except gateway.OutcomeUnknown:
        db.session.rollback()
        log.warning("refund %s: outcome unknown; it is looked up again before any resend", refund.id)
        return "pending"
    except ServiceUnavailable:  # Stripe not configured here, or our key refused: nothing was sent
        db.session.rollback()
        log.error("refund %s: Stripe cannot be reached with our configuration; it stays pending", refund.id)
        return "pending"
    except gateway.StripeError as exc:
        _book_refund(refund, failed=gateway.refusal(exc))
        return "failed"
    if stripe_refund.status in ("failed", "canceled"):
        _book_refund(refund, failed=f"Stripe refund {stripe_refund.id} is {stripe_refund.status}")
        return "failed"
    _book_refund(refund, stripe_refund_id=stripe_refund.id)
    return "succeeded"


def _book_refund(refund: Refund, *, stripe_refund_id: str | None = None, failed: str | None = None) -> None:
    """A refund Stripe made leaves our cash at Stripe; one it refused goes back to the escrow."""
    holding = ledger.refund_pending(refund.brief_id, refund.currency)
    if failed is not None:
        refund.status, refund.failure_reason = "failed", failed[:500]
        ledger.post("refund_failed", refund.id,
                    [(holding, refund.amount_cents), (ledger.escrow(refund.brief_id, refund.currency), -refund.amount_cents)])
    else:
        refund.status, refund.stripe_refund_id, refund.settled_at = "succeeded", stripe_refund_id, utcnow()
        ledger.post("refund_paid", refund.id,
                    [(holding, refund.amount_cents), (ledger.stripe_clearing(refund.currency), -refund.amount_cents)])
    db.session.commit()


def _refund_failed(event: gateway.WebhookEvent) -> None:
    """A refund Stripe made failed later (the card closed, say): its money is back in our Stripe
    balance, so it goes back into the brief's escrow, and the refund is failed. The sweep does not
    refund that brief again by itself: the same card would fail again, and a person must find
    another way to pay the brand back."""
    obj = event.object
    if obj.get("status") not in ("failed", "canceled"):
        return  # refund.updated for some other change
    refund = record_for_event(event, Refund, Refund.stripe_refund_id, "refund_id")
    if refund is None or refund.status != "succeeded":
        return  # not ours, or booked already (a replay, or refund.failed after refund.updated)
    # The brief's lock, as the refund sweep takes it: the sweep either sees this failure or runs first.
    db.session.get(Brief, refund.brief_id, with_for_update=True)
    refund.status = "failed"
    refund.failure_reason = f"Stripe refund {obj.get('id')} failed later: {obj.get('failure_reason') or 'no reason'}"
    ledger.post("refund_reversed", refund.id,
                [(ledger.stripe_clearing(refund.currency), refund.amount_cents),
                 (ledger.escrow(refund.brief_id, refund.currency), -refund.amount_cents)],
                memo=refund.failure_reason[:200])
    log.error("refund %s of brief %s failed at Stripe; the money is back in escrow for a person to return",
              refund.id, refund.brief_id)


def refund_released_escrow() -> int:
    """Cancelled and completed briefs keep escrow for claimed and submitted work; when that work
    ends without being paid (expired, released, rejected), the money is no longer owed and goes back."""
    # Not a brief with a refund in flight, nor one whose refund Stripe refused or failed: the same
    # card would fail the same way every run; that brief waits for a person.
    def unsettled(brief_id) -> sa.Exists:
        return sa.select(Refund.id).where(Refund.brief_id == brief_id, Refund.status.in_(["pending", "failed"])).exists()

    # Closed briefs that still hold escrow.
    candidates = held_escrow_owners(sa.select(Brief.id).where(Brief.status.in_(CLOSED), ~unsettled(Brief.id)))
    owed_nothing_more = 0
    for brief_id in candidates:
        brief = db.session.get(Brief, brief_id, with_for_update=True)
        if db.session.scalar(sa.select(unsettled(brief_id))):  # one failed or started since it was picked
            db.session.rollback()
            continue
        owed_nothing_more += bool(_refund_unowed(brief))
    return owed_nothing_more


def pending_refund_ids() -> list[str]:
    return list(db.session.scalars(sa.select(Refund.id).where(Refund.status == "pending")))


# Webhooks ----------------------------------------------------------------------------------

Handler = Callable[[gateway.WebhookEvent], None]

# Event type → what to do. A handler gets the verified event (its object, and for Connect
# events the account) and runs in the transaction that records the event id.
HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_failed,
    "refund.failed": _refund_failed,
    "refund.updated": _refund_failed,
    "charge.refund.updated": _refund_failed,
}


def register_handler(event_type: str, handler: Handler) -> None:
    """Other domains (payouts, accounts) add the events they care about."""
    HANDLERS[event_type] = handler


def handle_webhook(payload: bytes, signature: str | None) -> bool:
    """Verify, record once, and act on a Stripe event. False when it was a replay."""
    event = gateway.verify_webhook(payload, signature)
    try:
        with db.session.begin_nested():
            db.session.add(StripeEvent(id=event.id, type=event.type))
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    handler = HANDLERS.get(event.type)
    if handler is not None:
        handler(event)
    db.session.commit()
    return True
