"""Funding briefs through Stripe, refunding what a cancelled brief did not spend, and Stripe's webhooks."""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from marketplace.auth.service import Principal
from marketplace.briefs import service as briefs
from marketplace.briefs.models import Brief, Task, fee_for
from marketplace.errors import Conflict
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.models import LedgerAccount, LedgerLine
from marketplace.payments import gateway
from marketplace.payments.models import Payment, Refund, StripeEvent
from marketplace.timefmt import utcnow

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

    intent = gateway.create_payment_intent(
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        idempotency_key=f"fund-{payment.id}",
        metadata={"payment_id": payment.id, "brief_id": brief.id},
        description=f"Brief {brief.id}: {brief.title[:100]}",
    )
    if payment.stripe_payment_intent_id is None:
        payment.stripe_payment_intent_id = intent.id
        payment.status = "requires_payment"
        db.session.commit()
    return {
        "payment_id": payment.id,
        "payment_intent_id": intent.id,
        "client_secret": intent.client_secret,
        "amount_cents": payment.amount_cents,
        "currency": payment.currency,
    }


def record_for_event(event: gateway.WebhookEvent, model, stripe_id, metadata_key: str):
    """Our row that a Stripe event's object belongs to, locked for the handler's transaction (so
    two events about one object are handled one after the other, each seeing the other's result):
    found by the object's Stripe id, else by our own id in its metadata (the event can arrive
    before we stored Stripe's id)."""
    obj = event.object
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
    # Locked like a success: a failure read before a concurrent success committed must not then
    # overwrite it (a failed attempt followed by a card that went through is an ordinary sequence).
    payment = record_for_event(event, Payment, Payment.stripe_payment_intent_id, "payment_id")
    if payment is not None and payment.status == "requires_payment":
        payment.status = "failed"


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
    brief = briefs.get_brief(principal, brief_id, lock=True)
    briefs.transition(brief, "cancel")
    db.session.execute(sa.update(Task).where(Task.brief_id == brief.id, Task.status == "open").values(status="cancelled"))
    refund = reserve_refund(brief)
    db.session.commit()
    if refund is not None:
        settle_refund(refund.id)
    return brief


def reserve_refund(brief: Brief) -> Refund | None:
    """Set aside escrow that is not owed as a pending refund, in the caller's transaction.

    The escrow is locked before anything is read: an approval locks it too and commits its task
    updates with its ledger lines, so the balance and what is still owed are read from the same
    moment. (Read unlocked, an approval committing between the two reads left its cost in the
    balance but out of what is owed, and refunded it.)
    """
    escrow = ledger.escrow(brief.id, brief.currency)
    held = ledger.locked_balances([escrow])
    refundable = held[escrow.code] - owed_cents(brief)
    if refundable <= 0:
        return None
    payment = db.session.scalar(
        sa.select(Payment).where(Payment.brief_id == brief.id, Payment.status == "succeeded").order_by(Payment.created_at)
    )
    if payment is None:
        return None
    refund = Refund(brief_id=brief.id, payment_id=payment.id, amount_cents=refundable, currency=brief.currency)
    db.session.add(refund)
    db.session.flush()
    ledger.post_many([ledger.Posting(
        "refund", refund.id,
        ((escrow, refundable), (ledger.refund_pending(brief.id, brief.currency), -refundable)),
        memo="set aside for refund",
    )], locked=held)
    return refund


def settle_refund(refund_id: str) -> str:
    """Ask Stripe for a pending refund (idempotent on our row id) and book the outcome."""
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.status != "pending":
        return refund.status if refund else "missing"
    payment = db.session.get(Payment, refund.payment_id)
    holding = ledger.refund_pending(refund.brief_id, refund.currency)
    try:
        stripe_refund = gateway.create_refund(
            payment_intent_id=payment.stripe_payment_intent_id,
            amount_cents=refund.amount_cents,
            idempotency_key=f"refund-{refund.id}",
            metadata={"refund_id": refund.id, "brief_id": refund.brief_id},
        )
    except gateway.OutcomeUnknown:
        log.warning("refund %s: outcome unknown, will be retried with the same key", refund.id)
        return "pending"
    except gateway.StripeError as exc:
        refund.status = "failed"
        refund.failure_reason = str(getattr(exc, "user_message", None) or exc)[:500]
        ledger.post("refund_failed", refund.id,
                    [(holding, refund.amount_cents), (ledger.escrow(refund.brief_id, refund.currency), -refund.amount_cents)])
        db.session.commit()
        return "failed"
    refund.status = "succeeded"
    refund.stripe_refund_id = stripe_refund.id
    refund.settled_at = utcnow()
    ledger.post("refund_paid", refund.id,
                [(holding, refund.amount_cents), (ledger.stripe_clearing(refund.currency), -refund.amount_cents)])
    db.session.commit()
    return "succeeded"


def refund_released_escrow() -> int:
    """Cancelled briefs keep escrow for claimed and submitted work; when that work ends without
    being paid (expired, released, rejected), the money is no longer owed and goes back."""
    owed_nothing_more = 0
    # Only cancelled briefs that still hold escrow, and none with a refund still in flight.
    candidates = db.session.scalars(
        sa.select(LedgerAccount.owner_id)
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .join(Brief, Brief.id == LedgerAccount.owner_id)
        .where(LedgerAccount.kind == "escrow", Brief.status == "cancelled")
        .where(~sa.select(Refund.id).where(Refund.brief_id == Brief.id, Refund.status == "pending").exists())
        .group_by(LedgerAccount.owner_id)
        .having(sa.func.sum(LedgerLine.amount_cents) < 0)  # credit-normal: negative sum = money held
    ).all()
    for brief_id in candidates:
        brief = db.session.get(Brief, brief_id, with_for_update=True)
        refund = reserve_refund(brief)
        db.session.commit()
        if refund is not None:
            owed_nothing_more += 1
            settle_refund(refund.id)
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
