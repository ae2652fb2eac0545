"""Payout accounts (Stripe Connect), payout batches (one transfer per worker per batch), worker earnings."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from marketplace.audit import service as audit
from marketplace.auth.models import Worker
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.cases import service as cases
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import sql_new_id
from marketplace.db.snapshot import snapshot
from marketplace.db.upsert import upsert_insert
from marketplace.errors import BadGateway, Conflict, NotFound
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.ledger import queries as ledger_queries
from marketplace.ledger import service as ledger
from marketplace.notifications import service as notifications
from marketplace.payments import gateway
from marketplace.payments import service as payments
from marketplace.payouts.models import (
    ITEM_TRANSITIONS,
    PayoutAccount,
    PayoutBatch,
    PayoutItem,
    PayoutItemSubmission,
    PayoutSkip,
    transfer_key,
)
from marketplace.proofs import lifecycle as proofs
from marketplace.proofs.models import Submission
from marketplace.workforce import suspensions

log = logging.getLogger(__name__)

# Batch creation is serialised on this advisory lock: the second of two concurrent requests
# reads balances only after the first has moved its snapshot to "in transit".
BATCH_CREATION_LOCK = zlib.crc32(b"marketplace:payout-batch-creation")
CLAIM_GROUP = 50  # items marked `sending` per transaction before their transfers are made
STALLED_AFTER = timedelta(minutes=5)
DONE = ("paid", "failed", "reversed")
UNSETTLED = ("pending", "sending", "held")  # still in transit: the batch is not finished


# Payout accounts ----------------------------------------------------------------------------


def _account_out(account: PayoutAccount, onboarding_url: str | None = None) -> dict:
    return {
        "account_id": account.stripe_account_id,
        "onboarding_url": onboarding_url,
        "payouts_enabled": account.payouts_enabled,
        "transfers_active": account.transfers_active,
        "details_submitted": account.details_submitted,
        "blocked_reason": account.blocked_reason,
        "blocked_since": account.blocked_at if account.blocked_reason else None,
    }


def _apply_account_state(account: PayoutAccount, stripe_account: dict) -> None:
    capabilities = stripe_account.get("capabilities") or {}
    account.payouts_enabled = bool(stripe_account.get("payouts_enabled"))
    account.transfers_active = capabilities.get("transfers") == "active"
    account.details_submitted = bool(stripe_account.get("details_submitted"))
    account.updated_at = utcnow()


def set_up_payout_account(worker_id: str, *, return_url: str, refresh_url: str) -> tuple[dict, bool]:
    """The worker's Connect account (made once) and a fresh onboarding link. True when just made."""
    account = db.session.get(PayoutAccount, worker_id)
    created = False
    if account is None:
        worker = db.session.get(Worker, worker_id)
        if worker is None:
            raise NotFound("No such worker.")
        # Keyed on the worker: a retried or concurrent request gets the same Stripe account back.
        try:
            stripe_account = gateway.create_connect_account(
                worker_id=worker.id, email=worker.email, country=worker.country,
                idempotency_key=f"connect-account-{worker.id}",
            )
        except gateway.OutcomeUnknown as exc:
            raise BadGateway("The payment provider did not answer; try again.") from exc
        except gateway.StripeError as exc:
            raise BadGateway(f"The payment provider refused the account: {gateway.refusal(exc)}") from exc
        db.session.execute(
            upsert_insert(PayoutAccount.__table__)
            .values(worker_id=worker.id, stripe_account_id=stripe_account.id, payouts_enabled=False,
                    transfers_active=False, details_submitted=False, created_at=utcnow(), updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["worker_id"])
        )
        db.session.commit()
        account = db.session.get(PayoutAccount, worker_id)
        created = account.stripe_account_id == stripe_account.id
    try:
        link = gateway.create_account_link(account_id=account.stripe_account_id,
                                           refresh_url=refresh_url, return_url=return_url)
    except gateway.OutcomeUnknown as exc:
        raise BadGateway("The payment provider did not answer; try again.") from exc
    except gateway.StripeError as exc:
        raise BadGateway(f"The payment provider refused the onboarding link: {gateway.refusal(exc)}") from exc
    return _account_out(account, link.url), created


def get_payout_account(worker_id: str) -> dict:
    account = db.session.get(PayoutAccount, worker_id)
    if account is None:
        raise NotFound("No payout account yet: POST /v1/me/payout-account to make one.")
    return _account_out(account)


def account_updated(event: gateway.WebhookEvent) -> None:
    """Stripe's view of a connected account: the event object is the account as it now is."""
    obj = event.object
    account = db.session.scalar(
        sa.select(PayoutAccount).where(PayoutAccount.stripe_account_id == obj.get("id")).with_for_update()
    )
    if account is None:
        log.info("account.updated for an account that is not a worker's: %s", obj.get("id"))
        return
    _apply_account_state(account, obj)
    when = _event_time(event)
    # Our block lifts only for a view of the account newer than the failure that set it (an older
    # account.updated delivered late says nothing about the bank account since) that shows it good.
    if account.blocked_reason and when > as_utc(account.blocked_at) and _bank_account_good(obj):
        log.info("payout account %s unblocked by %s", account.stripe_account_id, event.id)
        account.blocked_reason, account.blocked_at, account.blocked_by_event = None, when, event.id


def _event_time(event: gateway.WebhookEvent) -> datetime:
    """When Stripe says the event happened (its `created`): the order events are applied in."""
    return datetime.fromtimestamp(event.created, tz=UTC) if event.created else utcnow()


def _bank_account_good(stripe_account: dict) -> bool:
    """Payouts enabled, and no requirement about the bank account (external_account) due or in error."""
    if not stripe_account.get("payouts_enabled"):
        return False
    requirements = stripe_account.get("requirements") or {}
    named = [str((e or {}).get("requirement", "")) if isinstance(e, dict) else "" for e in requirements.get("errors") or []]
    named += [str(r) for key in ("currently_due", "past_due") for r in requirements.get(key) or []]
    return not any(r.startswith("external_account") for r in named)


def payout_failed(event: gateway.WebhookEvent) -> tuple[str, str] | None:
    """A connected account's payout to its bank failed.

    Our transfer had already reached the worker's Stripe balance, and Stripe puts a failed
    payout back there: the money is the worker's and is not lost, so it is not returned to
    their available balance here (that would pay it twice). What we do: stop including the
    account in batches (payouts_enabled off, until Stripe's account.updated says otherwise),
    and when the payout names one of our items (metadata payout_item_id, set on payouts we
    create manually), reverse that item's transfer at Stripe; Stripe's transfer.reversed
    webhook then returns the money to the worker's available balance like any reversal.
    Returns (item id, reason) of the reversal to make, which the job layer enqueues.
    """
    obj = event.object
    account = None
    if event.account:
        account = db.session.scalar(
            sa.select(PayoutAccount).where(PayoutAccount.stripe_account_id == event.account).with_for_update()
        )
    if account is not None:
        account.payouts_enabled = False
        account.updated_at = utcnow()
        when = _event_time(event)
        # Blocked unless the account was shown good by an event newer than this failure (this one
        # came late); the block's time only moves forward.
        last = as_utc(account.blocked_at)
        if last is None or when >= last:
            account.blocked_reason = (f"bank payout {obj.get('id')} failed: "
                                      f"{obj.get('failure_code') or 'unknown'}")[:200]
            account.blocked_at, account.blocked_by_event = when, event.id
        elif account.blocked_reason is None:
            log.info("payout.failed %s is older than the account.updated that lifted the block; kept lifted", event.id)
    log.warning("payout %s failed on %s: %s %s", obj.get("id"), event.account,
                obj.get("failure_code"), obj.get("failure_message"))
    item_id = (obj.get("metadata") or {}).get("payout_item_id")
    item = db.session.get(PayoutItem, item_id) if item_id else None
    if item is None or item.status != "paid" or (account and item.stripe_account_id != account.stripe_account_id):
        return None
    return item.id, f"bank payout {obj.get('id')} failed: {obj.get('failure_code') or 'unknown'}"


def reverse_item(item_id: str, reason: str) -> str:
    """Ask Stripe to reverse a paid item's transfer; the transfer.reversed webhook books it."""
    item = db.session.get(PayoutItem, item_id)
    if item is None or item.status != "paid" or not item.stripe_transfer_id:
        return item.status if item else "missing"
    item.failure_reason = reason[:500]
    db.session.commit()
    gateway.create_transfer_reversal(transfer_id=item.stripe_transfer_id, idempotency_key=f"reverse-{item.id}",
                                     metadata={"payout_item_id": item.id})
    return "reversal_requested"


def transfer_reversed(event: gateway.WebhookEvent) -> None:
    """Money a transfer took back from the worker's Stripe account returns to their available balance."""
    obj = event.object
    item = payments.record_for_event(event, PayoutItem, PayoutItem.stripe_transfer_id, "payout_item_id")
    if item is None:
        log.warning("transfer.reversed for a transfer we did not make: %s", obj.get("id"))
        return
    if item.status in ("pending", "sending"):
        if obj.get("amount") != item.amount_cents or obj.get("destination") != item.stripe_account_id:
            log.error("transfer %s reversed differs from item %s; left for a person", obj.get("id"), item.id)
            cases.open_case("transfer_mismatch", item.id, (
                f"Stripe transfer {obj.get('id')} for this item ({obj.get('amount')} cents to {obj.get('destination')}) "
                f"was reversed; the item is {item.amount_cents} to {item.stripe_account_id}."),
                amount_cents=item.amount_cents, currency=item.currency, stripe_object_id=obj.get("id"))
            return
        # The reversal arrived before the job recorded the transfer: it exists, so book it first.
        _book_outcomes([item], {item.id: ("paid", obj.get("id"))})
    if item.status == "failed":
        log.error("transfer %s reversed but item %s is failed; left for a person", obj.get("id"), item.id)
        return
    reversed_total = int(obj.get("amount_reversed") or 0)
    already = _reversed_so_far(item)
    delta = min(reversed_total, item.amount_cents) - already
    if delta <= 0:
        return  # an older or repeated view of a reversal already booked
    ledger.post(
        "payout_reversed",
        f"{item.id}:{already + delta}",  # one entry per cumulative amount: partial reversals add up
        [(ledger.stripe_clearing(item.currency), delta), (ledger.worker_available(item.worker_id, item.currency), -delta)],
        memo=f"transfer {obj.get('id')} reversed",
    )
    item.status = "reversed"
    note = f"Transfer reversed at Stripe ({already + delta} of {item.amount_cents} cents)."
    item.failure_reason = f"{item.failure_reason}; {note}"[:500] if item.failure_reason else note
    # Its submissions are owed again (approved, carried by the next batch), the reversal on each.
    proofs.reverse_payment(_carried_by([item.id]),
                           f"Transfer {obj.get('id')} of payout item {item.id} reversed: {item.failure_reason}")


def _reversed_so_far(item: PayoutItem) -> int:
    row = db.session.execute(_reversed(PayoutItem.id == item.id)).first()
    return int(row[2]) if row else 0


# Batches --------------------------------------------------------------------------------------


def create_batch(*, currency: str, min_amount_cents: int, created_by: str) -> PayoutBatch:
    """Snapshot every eligible worker's available balance into items and reserve it, in one transaction.

    The caller commits (then enqueues processing). Eligible: a payout account with transfers
    active and payouts enabled and no block of ours, and an available balance of at least the
    minimum (and > 0). In the same snapshot, each item records the approved submissions its money
    is for (not yet carried by a live item), and the batch records every worker with money it left
    out, and why: on PostgreSQL one statement, so an approval committing meanwhile is either in
    the balance and the links or in neither.
    """
    dialect = _dialect()
    if dialect == "postgresql":  # SQLite (the embedded default) serialises writers anyway
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": BATCH_CREATION_LOCK})
    batch = PayoutBatch(currency=currency, min_amount_cents=min_amount_cents, created_by=created_by,
                        status="pending")
    db.session.add(batch)
    db.session.flush()

    minimum = max(min_amount_cents, 1)
    balances = ledger_queries.balances_of_kind("worker_available", currency, at_least=1)
    available = sa.select(balances.c.owner_id, balances.c.balance_cents).cte("available")
    payable = sa.and_(PayoutAccount.transfers_active.is_(True), PayoutAccount.payouts_enabled.is_(True),
                      PayoutAccount.blocked_reason.is_(None))
    # A suspended worker's money is held: what a suspension did not move to their held account
    # (approved since) stays in available, and no batch pays it until they are reinstated.
    suspended = available.c.owner_id.in_(suspensions.suspended_workers())
    eligible = (
        sa.select(
            sql_new_id("pbi", dialect), sa.literal(batch.id), available.c.owner_id,
            PayoutAccount.stripe_account_id, available.c.balance_cents, sa.literal(currency),
            sa.literal("pending"), sa.literal(0), sa.literal(1), sa.func.now(),
        )
        .select_from(available.join(PayoutAccount, PayoutAccount.worker_id == available.c.owner_id))
        .where(payable, ~suspended, available.c.balance_cents >= minimum)
    )
    insert_items = (
        sa.insert(PayoutItem)
        .from_select(["id", "batch_id", "worker_id", "stripe_account_id", "amount_cents", "currency",
                      "status", "attempts", "transfer_attempt", "created_at"], eligible)
        .returning(PayoutItem.id, PayoutItem.worker_id, PayoutItem.amount_cents)
    )
    reason = sa.case(
        (suspended, "held"),
        (PayoutAccount.worker_id.is_(None), "no_payout_account"),
        (PayoutAccount.blocked_reason.is_not(None), "payout_account_blocked"),
        (~payable, "payouts_disabled"),
        else_="under_minimum",
    )
    insert_skips = sa.insert(PayoutSkip).from_select(
        ["batch_id", "worker_id", "reason", "available_cents"],
        sa.select(sa.literal(batch.id), available.c.owner_id, reason, available.c.balance_cents)
        .select_from(available.outerjoin(PayoutAccount, PayoutAccount.worker_id == available.c.owner_id))
        .where(sa.or_(suspended, PayoutAccount.worker_id.is_(None), ~payable, available.c.balance_cents < minimum)),
    )
    if dialect == "postgresql":
        new_items = insert_items.cte("new_items")
        statement = (
            sa.select(new_items.c.id, new_items.c.worker_id, new_items.c.amount_cents)
            .add_cte(_insert_carried(new_items, currency).cte("new_links"))
            .add_cte(insert_skips.cte("new_skips"))
        )
        items = db.session.execute(statement).all()
    else:
        items = db.session.execute(insert_items).all()
        mine = sa.select(PayoutItem.id, PayoutItem.worker_id).where(PayoutItem.batch_id == batch.id).subquery()
        db.session.execute(_insert_carried(mine, currency))
        db.session.execute(insert_skips)
    ledger.post_many([
        ledger.Posting("payout_reserve", item_id, (
            (ledger.worker_available(worker_id, currency), amount),
            (ledger.worker_in_transit(worker_id, currency), -amount),
        ), memo=f"batch {batch.id}")
        for item_id, worker_id, amount in items
    ])
    if not items:
        batch.status = "completed"
        batch.started_at = batch.finished_at = utcnow()
    audit.record(created_by, "payout_batch.created", batch.id, None, {
        "currency": currency, "min_amount_cents": min_amount_cents, "items": len(items),
        "total_cents": sum(amount for _, _, amount in items)})
    return batch


def _insert_carried(items, currency: str) -> sa.Insert:
    """Link each new item (`items`: id, worker_id) to its worker's approved submissions in this
    currency that no live item carries yet (a failed or reversed item's money came back, so its
    submissions are carried again by the next batch)."""
    carried_live = (
        sa.select(PayoutItemSubmission.submission_id)
        .join(PayoutItem, PayoutItem.id == PayoutItemSubmission.payout_item_id)
        .where(PayoutItemSubmission.submission_id == Submission.id,
               PayoutItem.status.not_in(["failed", "reversed"]))
        .exists()
    )
    return sa.insert(PayoutItemSubmission).from_select(
        ["payout_item_id", "submission_id"],
        sa.select(items.c.id, Submission.id)
        .select_from(items)
        .join(Submission, Submission.worker_id == items.c.worker_id)
        .join(Brief, Brief.id == Submission.brief_id)
        .where(Submission.status == "approved", Brief.currency == currency, ~carried_live),
    )


def _carried_by(item_ids: list[str]) -> sa.Select:
    """The submissions whose money these items carry."""
    return sa.select(PayoutItemSubmission.submission_id).where(PayoutItemSubmission.payout_item_id.in_(item_ids))


def start_batch(*, currency: str, min_amount_cents: int, created_by: str) -> PayoutBatch:
    """The endpoint's path: create and commit the batch (the caller hands it to the payouts queue).
    Without Stripe configured, 503 before anything is reserved (as funding answers)."""
    gateway.require_configured()
    batch = create_batch(currency=currency, min_amount_cents=min_amount_cents, created_by=created_by)
    db.session.commit()
    return batch


def start_scheduled_batches(min_amount_cents: int) -> list[PayoutBatch]:
    """The payout schedule's run (PAYOUT_SCHEDULE): a batch per currency in which workers hold
    money available, each committed for the caller to hand to the payouts queue. A batch that
    finds nobody to pay is rolled back, so an idle schedule writes nothing; without Stripe
    configured nothing is reserved. Two runs at once are serialised by create_batch's lock: the
    second finds the money in transit and pays nobody."""
    if not gateway.configured():
        log.info("payout schedule: Stripe is not configured; no batch started")
        return []
    started = []
    for currency, total in sorted(ledger_queries.kind_balances("worker_available").items()):
        if total < min_amount_cents:
            continue
        batch = create_batch(currency=currency, min_amount_cents=min_amount_cents, created_by="schedule")
        if batch.status == "completed":  # nobody eligible: not worth a row every interval
            db.session.rollback()
            continue
        db.session.commit()
        started.append(batch)
    db.session.rollback()
    return started


def get_batch(batch_id: str) -> PayoutBatch:
    batch = db.session.get(PayoutBatch, batch_id)
    if batch is None:
        raise NotFound(f"No payout batch {batch_id}.")
    return batch


def list_batches(*, limit: int, cursor: str | None) -> tuple[list[PayoutBatch], str | None]:
    return page(sa.select(PayoutBatch), PayoutBatch, limit=limit, cursor=cursor)


def batch_detail(batch_id: str) -> dict:
    """A batch as GET shows it: status, summary and items read in one snapshot, so a running
    batch never says "0 of 2 done" above two paid items."""
    with snapshot():
        return present([get_batch(batch_id)], with_items=True)[0]


def batch_page(*, limit: int, cursor: str | None) -> dict:
    with snapshot():
        rows, next_cursor = list_batches(limit=limit, cursor=cursor)
        return {"data": present(rows), "next_cursor": next_cursor}


def _reversed(where) -> sa.Select:
    """(batch id, item id, cents reversed) of the items matching `where` that reversals reached,
    from the ledger: a reversal may be partial, and its entries (ref "item:cumulative") are the
    only record of how much."""
    reversals = ledger_queries.balance_changes("payout_reversed", "worker_available")
    return (
        sa.select(PayoutItem.batch_id, PayoutItem.id, sa.func.sum(reversals.c.cents))
        .join(reversals, reversals.c.ref_id.like(PayoutItem.id + ":%"))
        .where(where)
        .group_by(PayoutItem.batch_id, PayoutItem.id)
    )


def _reversed_in(batch_ids: list[str]) -> dict[str, tuple[str, int]]:
    """item id → (batch id, cents reversed) for the batches' reversed items."""
    rows = db.session.execute(_reversed(sa.and_(PayoutItem.batch_id.in_(batch_ids), PayoutItem.status == "reversed")))
    return {item_id: (batch_id, int(cents)) for batch_id, item_id, cents in rows}


def summaries(batch_ids: list[str], reversed_items: dict[str, tuple[str, int]] | None = None) -> dict[str, dict]:
    """Progress and totals per batch, from item statuses and the ledger's reversals, in two queries.

    paid_cents is what stayed with the workers: a partly reversed item counts its reversed part
    under reversed_cents and the rest under paid_cents.
    """
    rows = db.session.execute(
        sa.select(PayoutItem.batch_id, PayoutItem.status, sa.func.count(), sa.func.sum(PayoutItem.amount_cents))
        .where(PayoutItem.batch_id.in_(batch_ids))
        .group_by(PayoutItem.batch_id, PayoutItem.status)
    )
    out = {b: {"progress": {"done": 0, "total": 0},
               "totals": {"amount_cents": 0, "paid_cents": 0, "failed_cents": 0, "reversed_cents": 0,
                          "pending_cents": 0, "held_cents": 0, "items": 0}} for b in batch_ids}
    for batch_id, status, count, amount in rows:
        summary, amount = out[batch_id], int(amount or 0)
        summary["progress"]["total"] += count
        summary["totals"]["items"] += count
        summary["totals"]["amount_cents"] += amount
        if status in DONE:
            summary["progress"]["done"] += count
        key = {"paid": "paid_cents", "failed": "failed_cents", "reversed": "paid_cents",
               "held": "held_cents"}.get(status, "pending_cents")
        summary["totals"][key] += amount
    for batch_id, cents in (_reversed_in(batch_ids) if reversed_items is None else reversed_items).values():
        out[batch_id]["totals"]["paid_cents"] -= cents
        out[batch_id]["totals"]["reversed_cents"] += cents
    return out


def present(batches: list[PayoutBatch], *, with_items: bool = False) -> list[dict]:
    reversed_items = _reversed_in([b.id for b in batches])
    sums = summaries([b.id for b in batches], reversed_items)
    out = []
    for batch in batches:
        body = {
            "id": batch.id, "status": batch.status, "currency": batch.currency,
            "min_amount_cents": batch.min_amount_cents, "created_by": batch.created_by,
            "created_at": batch.created_at, "started_at": batch.started_at, "finished_at": batch.finished_at,
            **sums[batch.id],
        }
        if with_items:
            body["items"] = [
                {"id": i.id, "worker_id": i.worker_id, "worker_name": name, "amount_cents": i.amount_cents,
                 "currency": i.currency,
                 "stripe_account_id": i.stripe_account_id, "stripe_transfer_id": i.stripe_transfer_id,
                 # The contract's statuses: `sending` (asked of Stripe, outcome being confirmed) is
                 # still pending to a client, with transfer_requested saying which it is.
                 "status": "pending" if i.status == "sending" else i.status,
                 "transfer_requested": i.status == "sending",
                 "reversed_cents": reversed_items.get(i.id, (batch.id, 0))[1],
                 "failure_reason": i.failure_reason, "attempts": i.attempts,
                 "available_on": i.available_on if i.status == "held" else None,
                 "settled_at": i.settled_at}
                for i, name in db.session.execute(
                    sa.select(PayoutItem, Worker.display_name).join(Worker, Worker.id == PayoutItem.worker_id)
                    .where(PayoutItem.batch_id == batch.id).order_by(PayoutItem.created_at, PayoutItem.id))
            ]
            body["skipped"] = [
                {"worker_id": worker_id, "worker_name": name, "reason": reason, "available_cents": cents}
                for worker_id, name, reason, cents in db.session.execute(
                    sa.select(PayoutSkip.worker_id, Worker.display_name, PayoutSkip.reason, PayoutSkip.available_cents)
                    .join(Worker, Worker.id == PayoutSkip.worker_id)
                    .where(PayoutSkip.batch_id == batch.id).order_by(PayoutSkip.reason, PayoutSkip.worker_id))
            ]
        out.append(body)
    return out


# Processing: one Stripe transfer per item ----------------------------------------------------


def _book_outcomes(items: list[PayoutItem], outcomes: dict[str, tuple[str, object]]) -> None:
    """Settle locked items in the caller's transaction: ("paid", transfer id) moves the money
    from in transit to our cash at Stripe; ("failed", reason) back to the worker's available
    balance; ("held", available_on) leaves it in transit (nothing moves) until a later try."""
    postings = []
    for item in items:
        outcome, detail = outcomes[item.id]
        _move(item, outcome)
        in_transit = ledger.worker_in_transit(item.worker_id, item.currency)
        if outcome == "held":
            item.available_on = detail
            continue
        item.settled_at, item.available_on = utcnow(), None
        if outcome == "paid":
            item.stripe_transfer_id = detail
            postings.append(ledger.Posting("payout_paid", item.id, (
                (in_transit, item.amount_cents), (ledger.stripe_clearing(item.currency), -item.amount_cents),
            ), memo=f"transfer {detail}"))
        else:
            item.failure_reason = detail[:500]
            postings.append(ledger.Posting("payout_failed", item.id, (
                (in_transit, item.amount_cents),
                (ledger.worker_available(item.worker_id, item.currency), -item.amount_cents),
            ), memo=detail[:200]))
    db.session.flush()
    ledger.post_many(postings)
    paid = [item.id for item in items if item.status == "paid"]
    if paid:  # the submissions (and tasks, and so the groups' paid counts) this money was for
        proofs.mark_paid(_carried_by(paid))
        notifications.payouts_paid(sa.select(PayoutItem.id, PayoutItem.worker_id, PayoutItem.amount_cents,
                                             PayoutItem.currency).where(PayoutItem.id.in_(paid)))


def _move(item: PayoutItem, to: str) -> None:
    """An item's status changes only along ITEM_TRANSITIONS."""
    if to not in ITEM_TRANSITIONS[item.status]:
        raise ValueError(f"payout item {item.id}: {item.status} → {to} is not a legal move")
    item.status = to


def _record_outcomes(outcomes: dict[str, tuple[str, object]]) -> int:
    """Book what Stripe answered for several items in one transaction. Items someone else settled
    meanwhile (a webhook, another run) are left alone."""
    if not outcomes:
        return 0
    items = db.session.scalars(
        sa.select(PayoutItem)
        .where(PayoutItem.id.in_(list(outcomes)), PayoutItem.status.in_(["pending", "sending"]))
        .order_by(PayoutItem.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    _book_outcomes(items, outcomes)
    db.session.commit()
    return len(items)


class _Funds:
    """The platform's Stripe balance in one currency as a run spends it.

    Card money is pending for days before a transfer can spend it, and one transfer per worker
    spans many briefs' charges, so a transfer cannot be tied to one charge (source_transaction):
    the run pays what is available and holds the rest. `available` is None when the balance
    could not be read: then every item is tried and Stripe's balance_insufficient decides.
    """

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.held = 0
        self._pending: list[tuple[int, int]] | None = None
        try:
            balance = gateway.platform_balance().get(currency, {"available": 0, "pending": 0})
            self.available: int | None = balance["available"]
            self.pending_total = balance["pending"]
        except (gateway.OutcomeUnknown, gateway.StripeError) as exc:
            log.warning("payouts: Stripe's %s balance cannot be read now (%s); Stripe will decide", currency, exc)
            self.available, self.pending_total = None, None

    def take(self, amount: int) -> bool:
        """Whether a transfer of `amount` fits what is available (and count it spent)."""
        if self.available is None:
            return True
        if amount > self.available:
            return False
        self.available -= amount
        return True

    def give_back(self, amount: int) -> None:
        if self.available is not None:
            self.available += amount

    def refused(self) -> None:
        """Stripe said balance_insufficient after all (something else spent it): nothing is left."""
        self.available = 0

    def hold(self, amount: int) -> datetime | None:
        """Hold `amount` and say when it becomes available: the first moment the pending funds,
        taken in the order they become available, cover everything held so far beyond what is
        available now. None when they never do (the platform's own money would have to)."""
        self.held += amount
        if self._pending is None:
            try:
                self._pending = gateway.pending_funds(self.currency, self.pending_total or 0)
            except (gateway.OutcomeUnknown, gateway.StripeError) as exc:
                log.warning("payouts: pending %s funds cannot be read now (%s)", self.currency, exc)
                self._pending = []
        need, covered = self.held - max(self.available or 0, 0), 0
        for available_on, net in self._pending:
            covered += net
            if covered >= need:
                return datetime.fromtimestamp(available_on, UTC)
        return None


def _send(item: dict, batch_id: str) -> tuple[str, str | None]:
    """One transfer for one item already marked `sending`: ("paid", transfer id), ("failed", reason),
    ("held", None) when the available balance cannot cover it, or ("unknown", None). The caller
    records the outcome. The key is the item's current try's (transfer_key)."""
    try:
        transfer = gateway.create_transfer(
            amount_cents=item["amount_cents"], currency=item["currency"], destination=item["stripe_account_id"],
            transfer_group=batch_id, metadata={"payout_item_id": item["id"], "worker_id": item["worker_id"]},
            idempotency_key=transfer_key(item["id"], item["transfer_attempt"]),
        )
    except gateway.OutcomeUnknown as exc:
        log.warning("payout item %s: outcome unknown (%s); it will be looked up before any resend", item["id"], exc)
        return "unknown", None
    except gateway.IdempotencyError as exc:
        # The key was used with other parameters: a transfer may exist; never guess, look it up later.
        log.error("payout item %s: idempotency error %s", item["id"], exc)
        return "unknown", None
    except gateway.StripeError as exc:
        if gateway.insufficient_funds(exc):
            return "held", None
        return "failed", gateway.refusal(exc)
    return "paid", transfer.id


def _send_group(items: list[dict], batch_id: str, on_done: Callable[[int], None], funds: _Funds) -> int:
    """Transfers for a group of `sending` items, their outcomes booked together. Returns how many stay unknown.

    An item the available balance cannot cover is held without asking Stripe (its key stays
    unused). A crash before the booking leaves them `sending`; the next run looks them up at Stripe.
    """
    outcomes, unknown = {}, 0
    for item in items:
        if not funds.take(item["amount_cents"]):
            outcomes[item["id"]] = ("held", funds.hold(item["amount_cents"]))
            continue
        outcome, detail = _send(item, batch_id)
        if outcome == "held":
            funds.refused()
            detail = funds.hold(item["amount_cents"])
        elif outcome == "failed":
            funds.give_back(item["amount_cents"])
        if outcome == "unknown":
            unknown += 1
        else:
            outcomes[item["id"]] = (outcome, detail)
    _record_outcomes(outcomes)
    on_done(sum(1 for outcome, _ in outcomes.values() if outcome != "held"))
    return unknown


_SENT_COLUMNS = (PayoutItem.id, PayoutItem.worker_id, PayoutItem.stripe_account_id,
                 PayoutItem.amount_cents, PayoutItem.currency, PayoutItem.transfer_attempt)


def _claim_pending(batch_id: str, size: int) -> list[dict]:
    """Mark up to `size` pending items `sending` (attempt counted) and commit, before any Stripe call."""
    claimable = (
        sa.select(PayoutItem.id)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status == "pending")
        .order_by(PayoutItem.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.update(PayoutItem)
        .where(PayoutItem.id.in_(claimable))
        .values(status="sending", attempts=PayoutItem.attempts + 1, last_attempt_at=sa.func.now())
        .returning(*_SENT_COLUMNS)
    ).mappings().all()
    db.session.commit()
    return [dict(r) for r in rows]


def _claim_held(batch_id: str, size: int, funds: _Funds) -> list[dict]:
    """Held items that what is available now covers, up to `size`, marked `sending` on their next
    try and committed before any Stripe call.

    The new try's number (and so its idempotency key) is saved first: Stripe replays the refusal
    saved under the old key, and a crash after this commit resends under this same new key,
    after looking the transfer up at Stripe (see _reconcile_sending), so no try pays twice.
    """
    if not funds.available:
        return []
    rows = db.session.execute(
        sa.select(PayoutItem.id, PayoutItem.amount_cents)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status == "held")
        .order_by(PayoutItem.id)
        .with_for_update(skip_locked=True)
    ).all()
    chosen, room = [], funds.available
    for item_id, amount in rows:
        if amount <= room and len(chosen) < size:
            chosen.append(item_id)
            room -= amount
    if not chosen:
        db.session.rollback()
        return []
    claimed = db.session.execute(
        sa.update(PayoutItem)
        .where(PayoutItem.id.in_(chosen), PayoutItem.status == "held")
        .values(status="sending", transfer_attempt=PayoutItem.transfer_attempt + 1, available_on=None,
                attempts=PayoutItem.attempts + 1, last_attempt_at=sa.func.now())
        .returning(*_SENT_COLUMNS)
    ).mappings().all()
    db.session.commit()
    return [dict(r) for r in claimed]


def _reconcile_sending(batch_id: str, on_done: Callable[[int], None], funds: _Funds) -> int:
    """Items whose outcome is unknown: look each up at Stripe first; resend only what is not there.

    Returns how many are still unknown. Stripe forgets idempotency keys after 24 hours, so the
    lookup (transfer_group + metadata.payout_item_id), not the key, is what prevents a second payment.
    """
    sending = db.session.execute(
        sa.select(*_SENT_COLUMNS)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status == "sending")
        .order_by(PayoutItem.id)
    ).mappings().all()
    db.session.rollback()
    if not sending:
        return 0
    try:
        at_stripe = {gateway.our_id(t, "payout_item_id"): t for t in gateway.list_transfers(batch_id)}
    except gateway.OutcomeUnknown:
        log.warning("batch %s: cannot list transfers now; %d items stay unknown", batch_id, len(sending))
        return len(sending)
    found, differing = {}, {}
    for row in sending:
        transfer = at_stripe.get(row["id"])
        if transfer is None:
            continue
        if transfer.amount != row["amount_cents"] or transfer.destination != row["stripe_account_id"]:
            # Not ours as we asked for it (made by hand?): neither booked at our amount nor sent again.
            log.error("item %s: Stripe transfer %s differs from the item; left for a person", row["id"], transfer.id)
            differing[row["id"]] = (f"Stripe transfer {transfer.id} for this item is {transfer.amount} cents to "
                                    f"{transfer.destination}, not {row['amount_cents']} to {row['stripe_account_id']}; "
                                    "left unsettled for a person to resolve.")
        else:
            found[row["id"]] = ("paid", transfer.id)
    for item_id, reason in differing.items():
        db.session.execute(sa.update(PayoutItem).where(PayoutItem.id == item_id, PayoutItem.status == "sending")
                           .values(failure_reason=reason[:500]))
        row = next(r for r in sending if r["id"] == item_id)
        cases.open_case("transfer_mismatch", item_id, reason, amount_cents=row["amount_cents"],
                        currency=row["currency"], stripe_object_id=at_stripe[item_id].id)
    db.session.commit()
    _record_outcomes(found)
    on_done(len(found))
    resend = [dict(row) for row in sending if row["id"] not in found and row["id"] not in differing]
    if not resend:
        return 0
    db.session.execute(
        sa.update(PayoutItem).where(PayoutItem.id.in_([r["id"] for r in resend]), PayoutItem.status == "sending")
        .values(attempts=PayoutItem.attempts + 1, last_attempt_at=sa.func.now())
    )
    db.session.commit()
    unknown = 0
    for start in range(0, len(resend), CLAIM_GROUP):
        unknown += _send_group(resend[start:start + CLAIM_GROUP], batch_id, on_done, funds)
    return unknown


def settle_item_by_person(item_id: str, outcome: str, transfer_id: str | None, reason: str) -> str:
    """A person's resolution of an item whose Stripe transfer is unlike it, in the caller's
    transaction: "paid" books it paid by that transfer (at the item's amount: what differs stays
    visible to `flask payments reconcile`), "failed" returns its money to the worker's available
    balance (the transfer was reversed or is not the item's). Returns the item's batch id."""
    item = db.session.scalars(sa.select(PayoutItem).where(PayoutItem.id == item_id).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()
    if item is None:
        raise NotFound(f"No payout item {item_id}.")
    if item.status not in ("pending", "sending"):
        raise Conflict(f"Payout item {item_id} is {item.status} already.")
    if outcome == "paid" and not transfer_id:
        raise Conflict(f"No Stripe transfer is known for payout item {item_id}: it cannot be booked paid.")
    detail = transfer_id if outcome == "paid" else f"Settled by a person as failed: {reason}"
    _book_outcomes([item], {item.id: (outcome, detail)})
    return item.batch_id


def finish_if_done(batch_id: str) -> dict:
    return _finish_if_done(batch_id)


def item_batch(item_id: str) -> str:
    item = db.session.get(PayoutItem, item_id)
    if item is None:
        raise NotFound(f"No payout item {item_id}.")
    return item.batch_id


def item_settled(item_id: str) -> bool:
    """The item has an outcome (no longer pending or being confirmed)."""
    item = db.session.get(PayoutItem, item_id, populate_existing=True)
    return item is not None and item.status not in ("pending", "sending")


def _dialect() -> str:
    return db.session.get_bind().dialect.name


@contextmanager
def _runner_lock(batch_id: str) -> Iterator[bool]:
    """One runner per batch at a time: yields whether this one got the batch.

    A session-level advisory lock on a connection of its own, released on the way out, before
    the connection goes back to the pool (a pooled connection still holding it would refuse
    every later run of the batch, a resume included, for as long as it lives). If releasing
    fails the connection is discarded, and the lock dies with it, as with a SIGKILLed runner.
    """
    conn = db.engine.connect()
    try:
        if conn.dialect.name != "postgresql":
            yield True
            return
        key = zlib.crc32(f"payout-batch:{batch_id}".encode())
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except sa.exc.DBAPIError:
                    conn.invalidate()
    finally:
        conn.close()


def process_batch(batch_id: str, on_progress: Callable[[int], None] | None = None,
                  unknown_retries: int = 3) -> dict:
    """Make one Stripe transfer per item of the batch and record each outcome. Safe to run twice.

    Items left `sending` by a crashed run are looked up at Stripe first. What Stripe's available
    balance cannot cover is held, and held items it now covers are sent again under their next
    try's key. on_progress(n) is told whenever n more items are done (the CLI's progress bar).
    """
    batch = db.session.get(PayoutBatch, batch_id)
    if batch is None:
        raise NotFound(f"No payout batch {batch_id}.")
    if batch.status in ("completed", "completed_with_failures"):
        return progress(batch_id)
    with _runner_lock(batch_id) as mine:
        if not mine:
            log.info("batch %s is being processed by another runner", batch_id)
            return {**progress(batch_id), "skipped": "another runner holds the batch"}
        done_cb = on_progress or (lambda n: None)
        try:
            db.session.execute(
                sa.update(PayoutBatch).where(PayoutBatch.id == batch_id, PayoutBatch.status == "pending")
                .values(status="processing", started_at=sa.func.now())
            )
            db.session.commit()
            funds = _Funds(batch.currency)
            unknown = _reconcile_sending(batch_id, done_cb, funds)
            while claimed := _claim_pending(batch_id, CLAIM_GROUP):
                unknown += _send_group(claimed, batch_id, done_cb, funds)
            while claimed := _claim_held(batch_id, CLAIM_GROUP, funds):
                unknown += _send_group(claimed, batch_id, done_cb, funds)
            for attempt in range(unknown_retries):
                if not unknown:
                    break
                time.sleep(min(2 ** attempt, 5))
                unknown = _reconcile_sending(batch_id, done_cb, funds)
            return _finish_if_done(batch_id)
        finally:
            db.session.rollback()


def _finish_if_done(batch_id: str) -> dict:
    batch = db.session.get(PayoutBatch, batch_id, with_for_update=True, populate_existing=True)
    counts = dict(db.session.execute(
        sa.select(PayoutItem.status, sa.func.count()).where(PayoutItem.batch_id == batch_id).group_by(PayoutItem.status)
    ).all())
    # Held items keep the batch processing: it is finished when they are paid or failed.
    if not any(counts.get(status) for status in UNSETTLED) and batch.status in ("pending", "processing"):
        batch.status = "completed_with_failures" if counts.get("failed") else "completed"
        batch.finished_at = utcnow()
    db.session.commit()
    return progress(batch_id)


def progress(batch_id: str) -> dict:
    batch = db.session.get(PayoutBatch, batch_id)
    summary = summaries([batch_id])[batch_id]
    return {"batch_id": batch_id, "status": batch.status, **summary}


def stalled_batch_ids(older_than: timedelta = STALLED_AFTER) -> list[str]:
    """Batches not finished whose pending/sending items have not been touched for a while, and
    older batches with no such item left at all (the runner died after its last outcome was
    committed, before it marked the batch finished): a new run finishes either."""
    cutoff = utcnow() - older_than
    of_batch = sa.select(PayoutItem.id).where(PayoutItem.batch_id == PayoutBatch.id)
    open_items = of_batch.where(PayoutItem.status.in_(UNSETTLED))
    # Held items wait for Stripe's funds, not for a runner: resume_held_batch_ids brings them back.
    untouched = of_batch.where(PayoutItem.status.in_(["pending", "sending"]),
                               sa.func.coalesce(PayoutItem.last_attempt_at, PayoutItem.created_at) < cutoff)
    return list(db.session.scalars(
        sa.select(PayoutBatch.id)
        .where(PayoutBatch.status.in_(["pending", "processing"]),
               sa.or_(untouched.exists(), sa.and_(~open_items.exists(), PayoutBatch.created_at < cutoff)))
    ))


def held_batch_ids_ready() -> list[str]:
    """Batches with held items that Stripe's available balance can now pay (at least the smallest
    of them): one balance read, and only when something is held. Stripe's balance, not our clock,
    says when the pending funds have arrived."""
    held = db.session.execute(
        sa.select(PayoutItem.currency, PayoutItem.batch_id, sa.func.min(PayoutItem.amount_cents))
        .where(PayoutItem.status == "held")
        .group_by(PayoutItem.currency, PayoutItem.batch_id)
        .order_by(PayoutItem.batch_id)
    ).all()
    db.session.rollback()
    if not held:
        return []
    try:
        balance = gateway.platform_balance()
    except (gateway.OutcomeUnknown, gateway.StripeError) as exc:
        log.warning("held payouts: Stripe's balance cannot be read now (%s); trying again later", exc)
        return []
    return [batch_id for currency, batch_id, smallest in held
            if balance.get(currency, {}).get("available", 0) >= smallest]


def transfers_booked() -> dict[str, dict]:
    """Stripe transfer id → {item_id, currency, amount_cents, reversed_cents} of every item we
    booked as paid (reversed or not), for `flask payments reconcile`."""
    reversed_items = {item_id: cents for _, item_id, cents in db.session.execute(
        _reversed(PayoutItem.stripe_transfer_id.is_not(None)))}
    rows = db.session.execute(
        sa.select(PayoutItem.id, PayoutItem.stripe_transfer_id, PayoutItem.currency, PayoutItem.amount_cents)
        .where(PayoutItem.stripe_transfer_id.is_not(None), PayoutItem.status.in_(["paid", "reversed"]))
    )
    return {transfer: {"item_id": item_id, "currency": currency, "amount_cents": amount,
                       "reversed_cents": int(reversed_items.get(item_id, 0))}
            for item_id, transfer, currency, amount in rows}


# Earnings -------------------------------------------------------------------------------------


def worker_payouts(worker_id: str, *, limit: int, cursor: str | None) -> dict:
    """The worker's payout history: one row per batch item that carried their money, newest
    first, with its batch, status (as batch items show it), what reversals took back and how many
    submissions it paid for; read in one snapshot, like a batch."""
    with snapshot():
        rows, next_cursor = page(sa.select(PayoutItem).where(PayoutItem.worker_id == worker_id), PayoutItem,
                                 limit=limit, cursor=cursor)
        ids = [item.id for item in rows]
        reversed_cents = {item_id: int(cents) for _, item_id, cents in db.session.execute(
            _reversed(PayoutItem.id.in_(ids)))} if ids else {}
        carried = dict(db.session.execute(
            sa.select(PayoutItemSubmission.payout_item_id, sa.func.count())
            .where(PayoutItemSubmission.payout_item_id.in_(ids))
            .group_by(PayoutItemSubmission.payout_item_id)).all()) if ids else {}
        data = [{
            "id": item.id, "batch_id": item.batch_id, "amount_cents": item.amount_cents, "currency": item.currency,
            "status": "pending" if item.status == "sending" else item.status,
            "stripe_transfer_id": item.stripe_transfer_id,
            "reversed_cents": reversed_cents.get(item.id, 0),
            "submissions": int(carried.get(item.id, 0)),
            "failure_reason": item.failure_reason,
            "available_on": item.available_on if item.status == "held" else None,
            "created_at": item.created_at, "settled_at": item.settled_at,
        } for item in rows]
    return {"data": data, "next_cursor": next_cursor}


def earnings(worker_id: str) -> list[dict]:
    """Per currency: pending review (not money yet), available, in transit, paid; the ledger decides the last three."""
    from_ledger = ledger_queries.worker_earnings(worker_id)
    pending_rows = db.session.execute(
        sa.select(Brief.currency, sa.func.sum(TaskGroup.unit_price_cents))
        .select_from(Submission)
        .join(TaskGroup, TaskGroup.id == Submission.group_id)
        .join(Brief, Brief.id == Submission.brief_id)
        .where(Submission.worker_id == worker_id, Submission.status.in_(["validating", "needs_review"]))
        .group_by(Brief.currency)
    ).all()
    out: dict[str, dict] = {}

    def row(currency: str) -> dict:
        return out.setdefault(currency, {"currency": currency, "pending_review_cents": 0, "available_cents": 0,
                                         "in_transit_cents": 0, "paid_cents": 0, "bonus_cents": 0})

    for currency, figures in from_ledger.items():
        row(currency).update(figures)
    for currency, pending in pending_rows:
        row(currency)["pending_review_cents"] = int(pending or 0)
    if not out:
        row("usd")
    return sorted(out.values(), key=lambda r: r["currency"])
