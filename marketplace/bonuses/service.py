"""Paying bonuses: one-off bonuses from a brief's unspent escrow, performance bonuses earned by
conversions (capped per task), and what a brief's escrow holds beyond what it owes and promises.

Every bonus is one row in `bonuses` and one balanced ledger entry (kind `bonus` or
`performance_bonus`, ref_id = the bonus id) from the brief's escrow to the worker's available
balance, written in one transaction with the worker's notification. From there payout batches pay
it as they pay approved work; earnings and the brief's report count it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from marketplace.audit import service as audit
from marketplace.auth.models import Worker
from marketplace.auth.service import Principal
from marketplace.bonuses.models import LEDGER_KINDS, Bonus
from marketplace.briefs.models import Brief, TaskGroup, fee_for
from marketplace.briefs.service import get_brief, group_counts
from marketplace.db.arrays import among
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id, sql_new_id
from marketplace.db.upsert import upsert_insert
from marketplace.errors import Conflict, InvalidInput, NotFound
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.ledger import service as ledger
from marketplace.notifications import service as notifications
from marketplace.proofs.models import Submission
from marketplace.tracking.models import Conversion

# A brief pays bonuses while it runs; a closed brief has given back what it did not owe.
RUNNING = ("live", "paused")
APPROVED = ("approved", "paid")
MAX_BONUS_CENTS = 1_000_000  # $10,000 (or the like) at once: a bigger one is a typo


# --- what the escrow can spare ------------------------------------------------------------------------


def promised_cents(brief: Brief) -> int:
    """What the brief's escrow must keep for what it may still pay: every task that can still be
    approved (open in a running group, claimed, or submitted) at its price plus fee, and every
    performance bonus not yet earned up to its cap. Open tasks of a paused group (the stop rule's
    losers: nobody can claim them) are not promised, so their money can fund a bonus or a new group."""
    counts = group_counts([brief.id]) if brief.published_at is not None else {}
    earned = dict(db.session.execute(
        sa.select(Bonus.group_id, sa.func.sum(Bonus.amount_cents))
        .where(Bonus.brief_id == brief.id, Bonus.kind == "performance").group_by(Bonus.group_id)
    ).all())
    promised = 0
    for group in brief.task_groups:
        if brief.published_at is None:  # no tasks yet: every one of them is still to come
            c = {"open": group.quantity, "claimed": 0, "submitted": 0, "cancelled": 0}
        else:
            c = counts[group.id]
        open_promised = 0 if group.paused_reason else c["open"]
        promised += (open_promised + c["claimed"] + c["submitted"]) * (
            group.unit_price_cents + fee_for(group.unit_price_cents, brief.fee_bps))
        if group.bonus_max_per_task_cents:
            still_earning = group.quantity - c["cancelled"] - (c["open"] - open_promised)
            promised += max(0, still_earning * group.bonus_max_per_task_cents - int(earned.get(group.id) or 0))
    return promised


def lock_unspent(brief: Brief) -> tuple[int, ledger.Account, dict[str, int]]:
    """Lock the (locked) brief's escrow and read what it holds beyond what it promises: (unspent
    cents, the escrow, the locked balances to hand to ledger.post_many). Approvals lock the same
    escrow and commit their task changes with their ledger lines, so the balance and the promises
    are read from one moment."""
    escrow = ledger.escrow(brief.id, brief.currency)
    held = ledger.locked_balances([escrow])
    return held[escrow.code] - promised_cents(brief), escrow, held


def unspent_cents(principal: Principal, brief_id: str) -> int:
    """What the brief's escrow can spare now (for the console's bonus form), without keeping locks."""
    brief = get_brief(principal, brief_id, lock=True)
    spare = lock_unspent(brief)[0]
    db.session.rollback()
    return max(0, spare)


# --- one-off bonuses ----------------------------------------------------------------------------------


def pay_bonus(principal: Principal, *, brief_id: str, worker_id: str, amount_cents: int, reason: str,
              bonus_id: str | None = None) -> tuple[Bonus, bool]:
    """A one-off bonus from the brief's unspent escrow to a worker who did approved work on it:
    (the bonus, True) when paid now; (the bonus, False) when `bonus_id` was paid before.

    `bonus_id` comes from the request's Idempotency-Key (the same on every retry): a retry whose
    first answer was lost finds the first bonus rather than paying a second one; the ledger's
    unique (kind, ref_id) would refuse a second entry anyway. 404 for another brand's brief or a
    worker without approved work on it, 409 for a brief that is not running, 422 when the unspent
    escrow cannot cover it. The brief is locked first, then its escrow (as closing a brief does).
    """
    brief = get_brief(principal, brief_id, lock=True)
    if bonus_id is not None:
        earlier = db.session.get(Bonus, bonus_id)
        if earlier is not None:
            db.session.rollback()
            return earlier, False
    if brief.status not in RUNNING:
        raise Conflict(f"Bonuses are paid from a live or paused brief's escrow; this brief is {brief.status}.")
    worked = db.session.scalar(sa.select(sa.exists().where(
        Submission.brief_id == brief.id, Submission.worker_id == worker_id, Submission.status.in_(APPROVED))))
    if not worked:
        raise NotFound(f"Worker {worker_id} has no approved work on brief {brief.id}.")
    spare, escrow, held = lock_unspent(brief)
    if amount_cents > spare:
        message = (f"The brief's unspent escrow is {max(spare, 0)} cents (what it holds beyond the tasks and "
                   f"performance bonuses it has promised); a bonus of {amount_cents} cents is more.")
        raise InvalidInput(message, errors={"amount_cents": [message]})
    bonus = Bonus(id=bonus_id or new_id("bon"), kind="one_off", brief_id=brief.id, worker_id=worker_id,
                  amount_cents=amount_cents, currency=brief.currency, reason=reason,
                  created_by=f"{principal.role}:{principal.id}", created_at=utcnow())
    db.session.add(bonus)
    db.session.flush()
    ledger.post_many([_posting(bonus.id, "one_off", escrow, worker_id, brief.currency, amount_cents, brief.id)],
                     locked=held)
    notifications.notify(worker_id, "bonus", bonus.id, message=reason, amount_cents=amount_cents,
                         currency=brief.currency)
    audit.record(bonus.created_by, "bonus.paid", bonus.id, reason, {
        "brief_id": brief.id, "worker_id": worker_id, "amount_cents": amount_cents, "currency": brief.currency})
    db.session.commit()
    return bonus, True


def _posting(bonus_id: str, kind: str, escrow: ledger.Account, worker_id: str, currency: str, amount: int,
             brief_id: str) -> ledger.Posting:
    return ledger.Posting(LEDGER_KINDS[kind], bonus_id, (
        (escrow, amount), (ledger.worker_available(worker_id, currency), -amount),
    ), memo=f"{kind.replace('_', '-')} bonus on {brief_id}")


# --- performance bonuses ------------------------------------------------------------------------------


def earn_for_conversions(conversions: sa.Select) -> int:
    """Pay the performance bonuses these conversions earn, in the caller's transaction; how many.

    `conversions` selects conversion ids. A conversion earns when its group carries a bonus, its
    brief is running, and the tracked link it came through is an approved (or paid) task's: the
    claim's submission was approved. It earns per_conversion_cents, or what is left of the task's
    cap if less, and nothing once the cap is reached; each conversion once.

    Set-based and safe under concurrency: the escrows of the briefs concerned are locked first
    (in code order), so one transaction at a time reads a task's earnings so far and adds to them;
    then one INSERT … SELECT computes every amount at once (a running sum per task, in
    (occurred_at, id) order, against the cap), one statement books every entry and one tells the
    workers.
    """
    conv, groups, briefs = Conversion.__table__, TaskGroup.__table__, Brief.__table__
    approved = sa.exists().where(Submission.claim_id == conv.c.claim_id, Submission.status.in_(APPROVED))
    earning = (
        sa.select(conv.c.id, conv.c.task_id, conv.c.group_id, conv.c.brief_id, conv.c.worker_id,
                  conv.c.currency, conv.c.occurred_at, groups.c.bonus_per_conversion_cents.label("per"),
                  groups.c.bonus_max_per_task_cents.label("cap"))
        .join(groups, groups.c.id == conv.c.group_id)
        .join(briefs, briefs.c.id == conv.c.brief_id)
        .where(conv.c.id.in_(conversions), groups.c.bonus_per_conversion_cents.is_not(None),
               briefs.c.status.in_(RUNNING), approved,
               ~sa.exists().where(Bonus.conversion_id == conv.c.id))
    )
    # The briefs (escrows) concerned, from the conversions themselves, which never change; only
    # those of groups with a bonus, so conversions on other briefs never wait for an escrow lock.
    briefs_concerned = db.session.execute(
        sa.select(conv.c.brief_id, conv.c.currency).distinct()
        .join(groups, groups.c.id == conv.c.group_id)
        .where(conv.c.id.in_(conversions), groups.c.bonus_per_conversion_cents.is_not(None))
    ).all()
    if not briefs_concerned:
        return 0
    escrows = {brief_id: ledger.escrow(brief_id, currency) for brief_id, currency in briefs_concerned}
    held = ledger.locked_balances(escrows.values())

    candidates = earning.subquery("earning")
    earned_so_far = (sa.select(sa.func.coalesce(sa.func.sum(Bonus.amount_cents), 0))
                     .where(Bonus.task_id == candidates.c.task_id).scalar_subquery())
    before = sa.func.coalesce(sa.func.sum(candidates.c.per).over(
        partition_by=candidates.c.task_id, order_by=(candidates.c.occurred_at, candidates.c.id),
        rows=(None, -1)), 0)
    left = candidates.c.cap - earned_so_far - before
    amounts = sa.select(
        candidates, sa.case((left >= candidates.c.per, candidates.c.per), (left > 0, left), else_=0).label("amount"),
    ).subquery("amounts")
    dialect = db.session.get_bind().dialect.name
    now = utcnow()
    insert = upsert_insert(Bonus.__table__).from_select(
        ["id", "kind", "brief_id", "worker_id", "group_id", "task_id", "conversion_id", "amount_cents", "currency",
         "reason", "created_by", "created_at"],
        sa.select(sql_new_id("bon", dialect), sa.literal("performance"), amounts.c.brief_id, amounts.c.worker_id,
                  amounts.c.group_id, amounts.c.task_id, amounts.c.id, amounts.c.amount, amounts.c.currency,
                  sa.literal("Performance bonus: a conversion on your tracked link"),
                  sa.literal("system:performance-bonus"), sa.literal(now))
        .where(amounts.c.amount > 0),
    ).on_conflict_do_nothing(index_elements=["conversion_id"]).returning(
        Bonus.id, Bonus.brief_id, Bonus.worker_id, Bonus.amount_cents, Bonus.currency)
    paid = db.session.execute(insert).all()
    if not paid:
        return 0
    ledger.post_many([_posting(bonus_id, "performance", escrows[brief_id], worker_id, currency, amount, brief_id)
                      for bonus_id, brief_id, worker_id, amount, currency in paid], locked=held)
    notifications.notify_many("bonus", [
        {"worker_id": worker_id, "subject_id": bonus_id, "amount_cents": amount, "currency": currency,
         "message": "A conversion on your tracked link earned a performance bonus."}
        for bonus_id, _, worker_id, amount, currency in paid])
    return len(paid)


def earn_for_conversion_ids(conversion_ids: Sequence[str]) -> int:
    """earn_for_conversions for conversions named by id (tracking's new conversions)."""
    if not conversion_ids:
        return 0
    return earn_for_conversions(sa.select(Conversion.id).where(Conversion.id.in_(list(conversion_ids))))


def earn_on_approval(submission_ids: Sequence[str]) -> int:
    """Conversions that came in while these (just approved) submissions waited for review earn now."""
    if not submission_ids:
        return 0
    # Only submissions of groups that carry a bonus can earn one: a bulk approval of work without
    # bonuses (the usual case) reads its submissions once, by one array, and goes no further.
    claims = (sa.select(Submission.claim_id).join(TaskGroup, TaskGroup.id == Submission.group_id)
              .where(among(Submission.id, submission_ids), TaskGroup.bonus_per_conversion_cents.is_not(None)))
    return earn_for_conversions(sa.select(Conversion.id).where(Conversion.claim_id.in_(claims)))


# --- reading ------------------------------------------------------------------------------------------


def present(bonus: Bonus, worker_name: str | None = None) -> dict:
    return {
        "id": bonus.id, "kind": bonus.kind, "brief_id": bonus.brief_id, "worker_id": bonus.worker_id,
        "worker_name": worker_name, "group_id": bonus.group_id, "task_id": bonus.task_id,
        "conversion_id": bonus.conversion_id, "amount_cents": int(bonus.amount_cents), "currency": bonus.currency,
        "reason": bonus.reason, "created_by": bonus.created_by, "created_at": bonus.created_at,
    }


def list_bonuses(principal: Principal, *, brief_id: str | None, worker_id: str | None, limit: int,
                 cursor: str | None) -> tuple[list[dict], str | None]:
    """Bonuses newest first: an admin's of any brief, a brand's of its own briefs only."""
    query = sa.select(Bonus)
    if brief_id:
        get_brief(principal, brief_id)  # 404 for another brand's
        query = query.where(Bonus.brief_id == brief_id)
    elif not principal.is_admin:
        query = query.where(Bonus.brief_id.in_(sa.select(Brief.id).where(Brief.brand_id == principal.id)))
    if worker_id:
        query = query.where(Bonus.worker_id == worker_id)
    return _page_with_names(query, limit, cursor)


def list_for_worker(worker_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    return _page_with_names(sa.select(Bonus).where(Bonus.worker_id == worker_id), limit, cursor)


def _page_with_names(query: sa.Select, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    rows, next_cursor = page(query, Bonus, limit=limit, cursor=cursor)
    names = dict(db.session.execute(
        sa.select(Worker.id, Worker.display_name).where(Worker.id.in_({b.worker_id for b in rows}))
    ).all()) if rows else {}
    return [present(b, names.get(b.worker_id)) for b in rows], next_cursor
