"""The Stripe side of a brief's money: payments and their PaymentIntents, refunds to the card, and
Stripe's webhooks. The brief's lifecycle (what a payment or a refund does to it) is marketplace.briefs'."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from marketplace.cases import service as cases
from marketplace.db.clock import utcnow
from marketplace.errors import BadGateway, Conflict, InvalidInput, NotFound, ServiceUnavailable
from marketplace.events import service as events
from marketplace.extensions import db
from marketplace.ledger import queries as ledger_queries
from marketplace.ledger import service as ledger
from marketplace.payments import gateway
from marketplace.payments.models import Payment, Refund, StripeEvent

log = logging.getLogger(__name__)


# Funding ----------------------------------------------------------------------------------


def funding_intent(brief_id: str, amount_cents: int, currency: str, description: str, *,
                   relock: Callable[[], object]) -> dict | None:
    """A PaymentIntent for `amount_cents` of the brief (locked by the caller). Asking again reuses it.

    None when a concurrent request replaced a canceled intent first: the caller starts over (and
    gets the one that request made). `relock` takes the brief's lock again after a commit.
    """
    payment = db.session.scalar(
        sa.select(Payment).where(Payment.brief_id == brief_id, Payment.status.in_(["created", "requires_payment"]))
    )
    if payment is None or payment.amount_cents != amount_cents:
        if payment is not None:
            payment.status = "superseded"
        payment = Payment(brief_id=brief_id, amount_cents=amount_cents, currency=currency)
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
        relock()
        replaced = db.session.execute(
            sa.update(Payment).where(Payment.id == payment.id, Payment.status.in_(["created", "requires_payment"]))
            .values(status="superseded")
        ).rowcount
        if not replaced:
            db.session.rollback()
            return None  # hand out the one the other request made
        payment = Payment(brief_id=brief_id, amount_cents=amount_cents, currency=currency)
        db.session.add(payment)
        db.session.commit()
    try:
        intent = gateway.create_payment_intent(
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            idempotency_key=f"fund-{payment.id}",
            metadata={"payment_id": payment.id, "brief_id": brief_id},
            description=description,
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


class FundsUnreadable(BadGateway):
    """Stripe cannot tell us now what a succeeded payment brought in (its charge's balance
    transaction): nothing is booked, and the webhook answers 502 so that Stripe delivers it again."""

    slug = "funds-unreadable"


def payment_succeeded(event: gateway.WebhookEvent) -> tuple[Payment, int] | None:
    """payment_intent.succeeded: our payment it is for (locked) and what it received, for the
    brief to book; None when it is not ours to book.

    Before anything is booked, the charge's balance transaction is read (its fee is booked with
    the funding, by mark_succeeded): FundsUnreadable when Stripe cannot answer, so that the
    funding and its fee are booked together or not at all.
    """
    obj = event.object
    payment = record_for_event(event, Payment, Payment.stripe_payment_intent_id, "payment_id")
    if payment is None:
        log.warning("payment_intent.succeeded for an intent we did not make: %s", obj.get("id"))
        return None
    if obj.get("currency") != payment.currency:
        log.error("payment %s succeeded in an unexpected currency; left for a person", payment.id)
        return None
    beside = payment.stripe_payment_intent_id not in (None, obj.get("id"))
    if payment.status == "succeeded" and not beside:
        return payment, int(obj.get("amount_received") or obj.get("amount") or 0)  # a replay: booked once already
    charge = obj.get("latest_charge")
    try:
        funds = gateway.charge_funds(obj.get("id"), charge if isinstance(charge, str) else None)
    except (gateway.OutcomeUnknown, gateway.StripeError) as exc:
        db.session.rollback()
        log.warning("payment intent %s: its balance transaction cannot be read now (%s); "
                    "Stripe will deliver the event again", obj.get("id"), exc)
        raise FundsUnreadable("Stripe's balance transaction for this payment cannot be read now; "
                              "deliver the event again.") from None
    if beside:
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
    if payment.status != "succeeded":
        payment.stripe_charge_id, payment.stripe_fee_cents = funds.charge_id, funds.fee
    return payment, int(obj.get("amount_received") or obj.get("amount") or 0)


def mark_succeeded(payment: Payment) -> None:
    """The (locked) payment's money arrived (the caller books it once: see briefs.lifecycle), and
    with it Stripe's fee on its charge: our cash at Stripe is what Stripe's balance got, the
    charge's net."""
    payment.status = "succeeded"
    payment.succeeded_at = utcnow()
    if payment.stripe_fee_cents:
        ledger.post(
            "stripe_fee", payment.id,
            [(ledger.stripe_fees(payment.currency), payment.stripe_fee_cents),
             (ledger.stripe_clearing(payment.currency), -payment.stripe_fee_cents)],
            memo=f"Stripe's fee on charge {payment.stripe_charge_id}",
        )


def payment_failed(event: gateway.WebhookEvent) -> None:
    """An attempt to pay failed (a declined card). Stripe puts the PaymentIntent back to
    requires_payment_method, and the brand's client may try again with the same client secret, so
    the payment stays payable and POST /fund hands out the same intent. (Ending it here would make
    /fund create a second intent while the first could still be paid.) What failed is kept on the
    payment for the brief to show: a failure older than the one kept (events arrive out of order),
    or one about a payment that has since succeeded, changes nothing."""
    obj = event.object
    payment = record_for_event(event, Payment, Payment.stripe_payment_intent_id, "payment_id")
    error = obj.get("last_payment_error") or {}
    code = error.get("decline_code") or error.get("code") or "payment_failed"
    if payment is None:
        log.warning("payment_intent.payment_failed for an intent we did not make: %s", obj.get("id"))
        return
    log.info("payment %s (intent %s): an attempt failed (%s); it stays payable", payment.id, obj.get("id"), code)
    if payment.status == "succeeded" or (payment.failure_event_created or 0) > event.created:
        return
    payment.failure_code = str(code)[:64]
    payment.failure_reason = str(error.get("message") or "The payment was declined.")[:500]
    payment.failed_at = datetime.fromtimestamp(event.created, UTC) if event.created else utcnow()
    payment.failure_event_created = event.created


FUNDING_STATUSES = ("unpaid", "requires_payment", "failed", "succeeded")


def funding_view(status: str | None, failure_code: str | None, failure_reason: str | None,
                 failed_at: datetime | None) -> dict:
    """A brief's funding as the API shows it, from its latest payment's columns (None: no payment)."""
    if status is None:
        shown = "unpaid"
    elif status == "succeeded":
        shown = "succeeded"
    else:
        shown = "failed" if failure_code else "requires_payment"
    failed = shown == "failed"
    return {"status": shown, "failure_code": failure_code if failed else None,
            "failure_reason": failure_reason if failed else None, "failed_at": failed_at if failed else None}


FUNDING_COLUMNS = ("status", "failure_code", "failure_reason", "failed_at")


def funding_sql(brief_id_sql: str, prefix: str = "f_") -> str:
    """The fragment a one-statement brief read embeds: its latest payment's funding columns (the
    succeeded one if any, else the newest), portable SQL, one scalar subquery per column."""
    return ", ".join(
        f"(SELECT p.{column} FROM payments p WHERE p.brief_id = {brief_id_sql} "
        f"ORDER BY CASE WHEN p.status = 'succeeded' THEN 0 ELSE 1 END, p.created_at DESC, p.id DESC LIMIT 1) "
        f"AS {prefix}{column}" for column in FUNDING_COLUMNS)


def funding_of(brief_ids: list[str]) -> dict[str, dict]:
    """Each brief's funding view (briefs with no payment are left out: `unpaid`)."""
    if not brief_ids:
        return {}
    rows = db.session.execute(
        sa.select(Payment.brief_id, *(getattr(Payment, c) for c in FUNDING_COLUMNS))
        .where(Payment.brief_id.in_(brief_ids))
        .order_by(Payment.brief_id, sa.case((Payment.status == "succeeded", 0), else_=1),
                  Payment.created_at.desc(), Payment.id.desc())
    ).all()
    found: dict[str, dict] = {}
    for brief_id, *columns in rows:
        found.setdefault(brief_id, funding_view(*columns))
    return found


def offline_payment(brief_id: str, amount_cents: int, currency: str, reference: str = "offline") -> Payment:
    """A payment as Stripe's webhook would leave it before booking, with no Stripe at all (for
    `flask demo` and the benchmarks)."""
    payment = Payment(brief_id=brief_id, amount_cents=amount_cents, currency=currency,
                      stripe_payment_intent_id=f"pi_{reference}_{brief_id[-12:]}", status="requires_payment")
    db.session.add(payment)
    db.session.flush()
    return payment


# Refunds --------------------------------------------------------------------------------------


def reserve_refunds(brief_id: str, currency: str, refundable: int, *, escrow: ledger.Account,
                    locked: dict[str, int]) -> list[Refund]:
    """Set aside `refundable` cents of the brief's (locked) escrow as pending refunds, in the
    caller's transaction. A refund goes back to the card it came from and Stripe refunds no more
    than a charge took, so a brief paid more than once (a second payment after it was cancelled,
    say) gets one refund per payment, oldest first, each at most what that payment has left after
    its earlier refunds.
    """
    refunded = (
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0))
        .where(Refund.payment_id == Payment.id, Refund.status.in_(["pending", "succeeded"]))
        .scalar_subquery()
    )
    payments = db.session.execute(
        sa.select(Payment.id, Payment.amount_cents - refunded)
        .where(Payment.brief_id == brief_id, Payment.status == "succeeded")
        .order_by(Payment.created_at, Payment.id)
    ).all()
    refunds = []
    for payment_id, left in payments:
        amount = min(refundable, int(left))
        if amount <= 0:
            continue
        refunds.append(Refund(brief_id=brief_id, payment_id=payment_id, amount_cents=amount, currency=currency))
        refundable -= amount
    if refundable > 0:  # more in escrow than every payment brought in: not ours to guess at
        log.error("brief %s: %d cents refundable beyond its payments; left for a person", brief_id, refundable)
    if not refunds:
        return []
    db.session.add_all(refunds)
    db.session.flush()
    ledger.post_many([ledger.Posting(
        "refund", refund.id,
        ((escrow, refund.amount_cents), (ledger.refund_pending(brief_id, currency), -refund.amount_cents)),
        memo="set aside for refund",
    ) for refund in refunds], locked=locked)
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
                idempotency_key=refund_idempotency_key(refund),
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


def refund_idempotency_key(refund: Refund) -> str:
    """Derived from our own record: the first refund's id, and for a person's retry of it, that
    first refund's id and the attempt number (each attempt a new request, never a replay of the
    failed one)."""
    return f"refund-{refund.retry_of}-attempt-{refund.attempt}" if refund.retry_of else f"refund-{refund.id}"


def _book_refund(refund: Refund, *, stripe_refund_id: str | None = None, failed: str | None = None) -> None:
    """A refund Stripe made leaves our cash at Stripe; one it refused goes back to the escrow and
    is a case for a person (a retry of one that failed resolves its case when it is made)."""
    holding = ledger.refund_pending(refund.brief_id, refund.currency)
    if failed is not None:
        refund.status, refund.failure_reason = "failed", failed[:500]
        ledger.post("refund_failed", refund.id,
                    [(holding, refund.amount_cents), (ledger.escrow(refund.brief_id, refund.currency), -refund.amount_cents)])
        _open_refund_case(refund, f"Stripe refused refund {refund.id} (attempt {refund.attempt}): {failed}")
    else:
        refund.status, refund.stripe_refund_id, refund.settled_at = "succeeded", stripe_refund_id, utcnow()
        ledger.post("refund_paid", refund.id,
                    [(holding, refund.amount_cents), (ledger.stripe_clearing(refund.currency), -refund.amount_cents)])
        if refund.retry_of:
            cases.resolve_case("refund_failed", refund.retry_of, actor="stripe",
                               detail=f"Refund {refund.id} (attempt {refund.attempt}) made: {stripe_refund_id}")
        events.record_for_brief(refund.brief_id, events.REFUND_SUCCEEDED, {
            "id": refund.id, "object": "refund", "brief_id": refund.brief_id, "amount_cents": refund.amount_cents,
            "currency": refund.currency, "status": refund.status})
    db.session.commit()


def _open_refund_case(refund: Refund, detail: str) -> None:
    cases.open_case("refund_failed", refund.retry_of or refund.id, detail,
                    amount_cents=refund.amount_cents, currency=refund.currency, stripe_object_id=refund.stripe_refund_id)


def start_refund_retry(first_refund_id: str) -> Refund:
    """A person's retry of a failed refund, in the caller's transaction: a new refund row (attempt
    n + 1 of the first refund) holding the money again from the brief's escrow. Only when the
    latest attempt failed: never while one is in flight or after one succeeded, so a refund is
    never made twice. The caller commits, then settles it (settle_refund)."""
    first = db.session.get(Refund, first_refund_id, with_for_update=True, populate_existing=True)
    if first is None or first.retry_of is not None:
        raise NotFound(f"No first refund {first_refund_id}.")
    latest = db.session.scalars(
        sa.select(Refund).where(sa.or_(Refund.id == first.id, Refund.retry_of == first.id))
        .order_by(Refund.attempt.desc()).limit(1).execution_options(populate_existing=True)
    ).one()
    if latest.status != "failed":
        raise Conflict(f"Refund {latest.id} (attempt {latest.attempt}) is {latest.status}: there is nothing to retry.")
    retry = Refund(brief_id=first.brief_id, payment_id=first.payment_id, amount_cents=first.amount_cents,
                   currency=first.currency, retry_of=first.id, attempt=latest.attempt + 1, status="pending")
    db.session.add(retry)
    db.session.flush()
    try:
        ledger.post("refund", retry.id, [(ledger.escrow(first.brief_id, first.currency), first.amount_cents),
                                         (ledger.refund_pending(first.brief_id, first.currency), -first.amount_cents)],
                    memo=f"retry {retry.attempt} of refund {first.id}")
    except ledger.InsufficientFunds as exc:
        raise Conflict(f"The brief's escrow no longer holds the {first.amount_cents} cents of refund {first.id}: {exc}") from exc
    return retry


def refund_failed_later(event: gateway.WebhookEvent) -> Refund | None:
    """refund.failed (and refund.updated to failed): our refund it is about, locked, when we had
    booked it as paid; None for any other change, a refund not ours, or one booked already (a
    replay, or refund.failed after refund.updated)."""
    if event.object.get("status") not in ("failed", "canceled"):
        return None  # refund.updated for some other change
    refund = record_for_event(event, Refund, Refund.stripe_refund_id, "refund_id")
    if refund is None or refund.status != "succeeded":
        return None
    return refund


def book_refund_reversed(refund: Refund, event: gateway.WebhookEvent) -> None:
    """A refund Stripe made failed later (the card closed, say): its money is back in our Stripe
    balance, so it goes back into the brief's escrow, and the refund is failed."""
    obj = event.object
    refund.status = "failed"
    refund.failure_reason = f"Stripe refund {obj.get('id')} failed later: {obj.get('failure_reason') or 'no reason'}"
    _open_refund_case(refund, refund.failure_reason)
    ledger.post("refund_reversed", refund.id,
                [(ledger.stripe_clearing(refund.currency), refund.amount_cents),
                 (ledger.escrow(refund.brief_id, refund.currency), -refund.amount_cents)],
                memo=refund.failure_reason[:200])
    log.error("refund %s of brief %s failed at Stripe; the money is back in escrow for a person to return",
              refund.id, refund.brief_id)


def unsettled_refund(brief_id) -> sa.Exists:
    """The brief has a refund in flight, or one Stripe refused or failed: the same card would fail
    the same way every run, so that brief waits for a person."""
    retried = aliased(Refund)
    made_since = (sa.select(retried.id)
                  .where(retried.retry_of == sa.func.coalesce(Refund.retry_of, Refund.id), retried.status == "succeeded")
                  .exists())
    # A failed refund a person's retry has since made (see start_refund_retry) no longer waits.
    return sa.select(Refund.id).where(
        Refund.brief_id == brief_id,
        sa.or_(Refund.status == "pending", sa.and_(Refund.status == "failed", ~made_since))).exists()


def pending_refund_ids() -> list[str]:
    return list(db.session.scalars(sa.select(Refund.id).where(Refund.status == "pending")))


# What we booked of Stripe's, for `flask payments reconcile` --------------------------------------


def charges_booked() -> dict[str, dict]:
    """Stripe charge id → {payment_id, currency, amount_cents (funded), fee_cents (booked)} of
    every succeeded payment that has one, amounts as the ledger booked them."""
    funded = ledger_queries.changes_by_ref("funding", "stripe_clearing")
    fees = ledger_queries.changes_by_ref("stripe_fee", "stripe_fees")
    rows = db.session.execute(
        sa.select(Payment.id, Payment.stripe_charge_id, Payment.currency)
        .where(Payment.status == "succeeded", Payment.stripe_charge_id.is_not(None))
    )
    return {charge: {"payment_id": pid, "currency": currency, "amount_cents": funded.get(pid, 0),
                     "fee_cents": fees.get(pid, 0)} for pid, charge, currency in rows}


def refunds_booked() -> dict[str, dict]:
    """Stripe refund id → {refund_id, currency, amount_cents, failed_later} of every refund Stripe made."""
    rows = db.session.execute(
        sa.select(Refund.id, Refund.stripe_refund_id, Refund.currency, Refund.amount_cents, Refund.status)
        .where(Refund.stripe_refund_id.is_not(None))
    )
    return {stripe_id: {"refund_id": rid, "currency": currency, "amount_cents": amount,
                        "failed_later": status == "failed"} for rid, stripe_id, currency, amount, status in rows}


# Webhooks ----------------------------------------------------------------------------------

# A handler gets the verified event (its object, and for Connect events the account) and runs in
# the transaction that records the event id.
Handler = Callable[[gateway.WebhookEvent], None]


def handle_webhook(payload: bytes, signature: str | None, handlers: Mapping[str, Handler],
                   secret_setting: str = "STRIPE_WEBHOOK_SECRET") -> bool:
    """Verify (with the endpoint's secret), record once, and act on a Stripe event with
    handlers[its type] (the table is marketplace.stripe_events.HANDLERS; types it does not name are
    recorded and ignored). Both endpoints record ids in one table, so an event is handled once
    whichever endpoint it came in on. False when it was a replay."""
    event = gateway.verify_webhook(payload, signature, secret_setting)
    try:
        with db.session.begin_nested():
            db.session.add(StripeEvent(id=event.id, type=event.type))
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    handler = handlers.get(event.type)
    if handler is not None:
        handler(event)
    db.session.commit()
    return True
