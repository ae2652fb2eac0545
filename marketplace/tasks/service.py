"""Finding, claiming, releasing and expiring tasks. A claim is taken under row locks so no task goes to two workers."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app

from marketplace.auth import require_role
from marketplace.auth.models import Brand, Worker
from marketplace.auth.service import CREDENTIAL_CHECK, Principal, hash_secret, principal_from
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.db import direct
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import new_id
from marketplace.errors import Conflict, NotFound, ServiceUnavailable
from marketplace.extensions import db
from marketplace.http.pagination import decode_cursor, encode_cursor
from marketplace.proofs.checks.link import LINK_PLACEMENT
from marketplace.tasks import lifecycle, promo_codes
from marketplace.tasks.models import HOLDING, Claim, Task
from marketplace.workforce import eligibility, suspensions


def new_tracked_code() -> str:
    return secrets.token_urlsafe(9)  # 72 random bits, URL-safe, 12 characters


def claimable_group(group_id: str, *, locking_worker: str | None = None) -> tuple[TaskGroup, Brief, str]:
    """The group if a worker may claim from it now: live brief, inside its window, not paused; with
    the brand's name (its promo codes' prefix), read in the same statement.

    With `locking_worker`, the same statement also locks that worker's row (the claim's first
    step), so the read and the lock are one round trip."""
    row = db.session.execute(_group_read(locking_worker is not None),
                             {"group_id": group_id, "worker_id": locking_worker}).first()
    if row is None:
        raise NotFound(f"No task group {group_id}.")
    group, brief, brand_name = row[0], row[1], row[2]
    refusal = _not_claimable(group, brief, utcnow())
    if refusal is not None:
        if locking_worker is not None:
            db.session.rollback()  # a refused claim holds the worker's row no longer than it must
        raise Conflict(refusal)
    return group, brief, brand_name


def _not_claimable(group, brief, now: datetime) -> str | None:
    """Why no task of the group can be claimed now (the brief not live, outside its window, the
    group paused), or None."""
    if brief.status != "live":
        return f"The brief is {brief.status}; tasks can be claimed only while it is live."
    if not (as_utc(brief.starts_at) <= now < as_utc(brief.ends_at)):
        return "The brief is outside its time window."
    if group.paused_reason:
        return f"This task group is paused: {group.paused_reason}"
    return None


@functools.lru_cache(maxsize=2)
def _group_read(locking: bool) -> sa.Select:
    """claimable_group's statement, built once (every value bound); with the worker's lock or without."""
    query = (sa.select(TaskGroup, Brief, Brand.name).join(Brief, Brief.id == TaskGroup.brief_id)
             .join(Brand, Brand.id == Brief.brand_id)
             .where(TaskGroup.id == sa.bindparam("group_id", type_=sa.String)))
    if locking:
        locked = (sa.select(Worker.id).where(Worker.id == sa.bindparam("worker_id", type_=sa.String))
                  .with_for_update().cte("locked_worker"))
        query = query.add_columns(locked.c.id).outerjoin(locked, sa.true())
    return query


# An expired claim is ended this long after its expiry, not at once: proof whose upload began
# before the expiry (a slow phone, a 10 MB screenshot) is still taken when it arrives.
UPLOAD_GRACE = timedelta(minutes=2)


def counts_against_limit(now: datetime) -> sa.ColumnElement[bool]:
    """A claim that counts toward max_per_worker: submitted work, or a claim that can still take
    proof (until its expiry and the UPLOAD_GRACE after it). Past that it counts no more, though
    the expiry job (each minute) has not ended it yet."""
    return sa.or_(Claim.status == "submitted",
                  sa.and_(Claim.status == "active", Claim.expires_at > now - UPLOAD_GRACE))


def claim(worker_id: str, group_id: str) -> Claim:
    """Reserve one open task of the group for the worker, or 409 (see `_take`)."""
    new_claim, _, _ = _take(worker_id, group_id)
    db.session.commit()
    return new_claim


def claim_described(worker_id: str, group_id: str, base_url: str, answer: Callable | None = None):
    """`claim` and `describe_claim` in one: the view is built from the rows the claim read and
    wrote, before its commit, so nothing is read again after it (the route's path).

    On PostgreSQL the claim is one transaction of three round trips on the direct pool (see
    `_take_pipelined`); the ORM's session would spend eight (a pre-ping, BEGIN, a trip per
    statement, COMMIT) and the Python of loading entities around them.

    With `answer` (the route's: view → (response, statements)) the response is what comes back,
    and its statements (the Idempotency-Key's record of it) commit in the claim's transaction."""
    if direct.pipelines():
        return _take_pipelined(worker_id, group_id, base_url, answer)
    new_claim, group, brief = _take(worker_id, group_id)
    db.session.flush()
    view = claim_view(new_claim, group, brief, base_url)
    if answer is None:
        db.session.commit()
        return view
    response, statements = answer(view)
    for statement, params in statements:
        db.session.execute(statement, params)
    db.session.commit()
    return response


def _take(worker_id: str, group_id: str) -> tuple[Claim, TaskGroup, Brief]:
    """Reserve one open task of the group for the worker, or 409; uncommitted.

    The worker's row is locked first, so one worker's concurrent claims are counted one after
    another against max_per_worker; the task is picked with FOR UPDATE SKIP LOCKED, so
    concurrent workers each take a different open task without waiting on one another.

    Three statements before the task moves: the group and brief read with the worker's lock;
    then, in a statement of its own (so in READ COMMITTED it sees what committed while it
    waited for the lock), the suspension, the eligibility rules, the count against
    max_per_worker and the pick of the task, the pick only when nothing refuses the claim.
    """
    group, brief, brand_name = claimable_group(group_id, locking_worker=worker_id)
    # Under the worker's row lock, which suspend() takes too: a suspension either commits first
    # (and this claim is refused) or waits for this claim and then ends it. Likewise what the
    # rules read (the worker's rate, the brand's blocks) is as committed now, not as it was when
    # the request began.
    row = db.session.execute(_verdict_and_pick(group.max_per_worker is not None), {
        "worker_id": worker_id, "group_id": group.id, "brand_id": brief.brand_id, "now": utcnow(),
        "max_per_worker": group.max_per_worker if group.max_per_worker is not None else 0,
    }).one()
    refusal = _verdict_refusal(row._mapping, group)
    if refusal is not None:
        db.session.rollback()
        raise refusal
    now = utcnow()
    try:
        new_claim = lifecycle.claim(
            row.task_id, worker_id=worker_id, group_id=group.id, brief_id=brief.id, tracked_code=new_tracked_code(),
            now=now, expires_at=now + timedelta(minutes=current_app.config["CLAIM_TTL_MINUTES"]),
            promo_code=(lambda: promo_codes.new_promo_code(brand_name)) if brief.promo_codes else None,
        )
    except lifecycle.PromoCodesExhausted:
        db.session.rollback()
        raise ServiceUnavailable("No free promo code could be drawn for this claim; try again.",
                                 headers={"Retry-After": "1"}) from None
    return new_claim, group, brief


def _verdict_refusal(row: Mapping, group, *, picking: bool = True) -> Exception | None:
    """What the claim's verdict row says keeps the worker from the group (suspended, a rule, the
    limit per worker, no open task left), as the error to raise; None when a task was picked (or,
    `picking` false, when the statement held back its pick for a reason of the caller's)."""
    if row["suspended"]:
        return suspensions.Suspended(suspensions.SUSPENDED)
    not_eligible = eligibility.refused(row)
    if not_eligible is not None:
        return not_eligible
    if group.max_per_worker is not None and row["held"] >= group.max_per_worker:
        return Conflict(f"You already hold {row['held']} of this group's tasks, its limit per worker.")
    if picking and row["task_id"] is None:
        return Conflict("No open task is left in this group.")
    return None


# What the claim reads of its group and brief (for its checks and the claim's view), by field name.
_GROUP_FIELDS = ("id", "kind", "name", "unit_price_cents", "instructions", "proof", "max_per_worker", "paused_reason")
_BRIEF_FIELDS = ("id", "brand_id", "status", "starts_at", "ends_at", "currency", "promo_codes", "title",
                 "key_message", "hook", "offer", "prohibitions", "disclosure_required", "disclosure_on_media",
                 "usage_rights", "landing_url")


def _take_pipelined(worker_id: str, group_id: str, base_url: str, answer: Callable | None):
    """The claim and its view, committed, in two round trips on PostgreSQL: BEGIN, the group read
    that locks the worker's row, and the verdict, the pick, the task's move and the claim's insert
    in one statement of its own (so in READ COMMITTED it sees what committed while the read waited
    for the lock: a suspension, a decision on the worker's rate, the worker's other claim), all
    sent together; then the COMMIT. The second statement reads the group's brief, brand and limit
    itself, so it need not wait for the first one's answer. The same rules as `_take`, which the
    embedded SQLite default runs.

    A brief with promo codes takes one more trip: a code's prefix is the brand's name, known only
    from the first answer, so the batch's statement holds back (no code bound) and is sent again
    with one."""
    now = utcnow()
    values = {
        "worker_id": worker_id, "group_id": group_id, "now": now, "claim_id": new_id("clm"),
        "tracked_code": new_tracked_code(), "promo_code": None,
        "expires_at": now + timedelta(minutes=current_app.config["CLAIM_TTL_MINUTES"]),
    }
    with direct.transaction() as tx:
        found, verdicts = tx.run((_locked_group_read(), {"group_id": group_id, "worker_id": worker_id}),
                                 (_verdict_pick_and_claim(), values))
        if not found or not verdicts:
            raise NotFound(f"No task group {group_id}.")
        row = found[0]
        group = SimpleNamespace(**{name: row[f"group_{name}"] for name in _GROUP_FIELDS})
        brief = SimpleNamespace(**{name: row[f"brief_{name}"] for name in _BRIEF_FIELDS})
        verdict = verdicts[0]
        if not verdict["claimable"]:
            raise Conflict(_not_claimable(group, brief, now) or "This task group cannot be claimed just now.")
        group.max_per_worker = verdict["max_per_worker"]  # as the statement that decided judged it
        attempts = 0
        while True:
            held_back = verdict["promo_codes"] and values["promo_code"] is None
            refused = _verdict_refusal(verdict, group, picking=not held_back)
            if refused is not None:
                raise refused
            if verdict["claim_id"] is not None:
                break
            # No claim yet: a promo code is wanted (none bound, or the one drawn was taken).
            if attempts == lifecycle.PROMO_CODE_ATTEMPTS:
                raise ServiceUnavailable("No free promo code could be drawn for this claim; try again.",
                                         headers={"Retry-After": "1"})
            attempts += 1
            values["promo_code"] = promo_codes.new_promo_code(row["brand_name"])
            if verdict["task_id"] is None:  # held back for the code: the whole statement again, with it
                [[verdict]] = tx.run((_verdict_pick_and_claim(), values))
            else:  # the task is ours and the code was taken: the INSERT alone, with another
                [again] = tx.run((lifecycle.CLAIM_AGAIN, {**values, "task_id": verdict["task_id"], "brief_id": brief.id}))
                if again:
                    verdict = {**verdict, **{f"claim_{name}": value for name, value in again[0].items()}}
        claimed = {name: verdict[f"claim_{name}"] for name in lifecycle.CLAIM_RETURNED}
        view = claim_view(SimpleNamespace(**claimed), group, brief, base_url)
        if answer is None:
            tx.commit()
            return view
        response, statements = answer(view)
        tx.commit(*statements)
    return response


@functools.cache
def _locked_group_read() -> sa.Select:
    """The pipelined claim's first statement: its group and brief, the brand's name (its promo
    codes' prefix), with the worker's row locked (FOR UPDATE), every value bound."""
    locked = (sa.select(Worker.id).where(Worker.id == sa.bindparam("worker_id", type_=sa.String))
              .with_for_update().cte("locked_worker"))
    groups, briefs = TaskGroup.__table__.c, Brief.__table__.c
    return (sa.select(*(groups[name].label(f"group_{name}") for name in _GROUP_FIELDS),
                      *(briefs[name].label(f"brief_{name}") for name in _BRIEF_FIELDS),
                      Brand.name.label("brand_name"), locked.c.id.label("locked_worker"))
            .select_from(TaskGroup).join(Brief, Brief.id == TaskGroup.brief_id).join(Brand, Brand.id == Brief.brand_id)
            .outerjoin(locked, sa.true())
            .where(TaskGroup.id == sa.bindparam("group_id", type_=sa.String)))


@functools.cache
def _verdict_pick_and_claim() -> sa.Select:
    """The pipelined claim's second statement: `_verdict_parts` on the group's own `_claim_target`,
    and the picked task moved to the worker under a new claim (lifecycle.claim_picked), in one
    statement; the row carries the verdict, the moved task's id (task_id) and the claim's columns
    (claim_…), null when refused. No row when there is no such group."""
    target = _claim_target()
    verdict, pick = _verdict_parts(True, target)
    picked = pick.cte("picked")
    moved, claimed = lifecycle.claim_picked(sa.select(picked.c.id).scalar_subquery(), target.c.brief_id)
    return (sa.select(verdict, moved.c.id.label("task_id"),
                      *(claimed.c[name].label(f"claim_{name}") for name in lifecycle.CLAIM_RETURNED))
            .select_from(verdict.outerjoin(moved, sa.true()).outerjoin(claimed, sa.true())))


@functools.lru_cache(maxsize=2)
def _verdict_and_pick(limited: bool) -> sa.Select:
    """The claim's second statement (the ORM path), built once per kind of group: `_verdict_parts`
    and the task picked, as one row."""
    verdict, pick = _verdict_parts(limited)
    return sa.select(verdict, pick.correlate(verdict).scalar_subquery().label("task_id")).select_from(verdict)


def _verdict_parts(limited: bool, target: sa.CTE | None = None) -> tuple[sa.CTE, sa.Select]:
    """The claim's verdict and its pick, every value bound: the suspension, one column per
    eligibility rule, the claims held against the limit (a CTE); and the open task picked (FOR
    UPDATE SKIP LOCKED) only when none of them refuses the claim.

    Without `target`, the brand and the limit are the caller's (:brand_id, :max_per_worker, the
    count only when `limited`). With it (`_claim_target`: the group's brief, brand and limit read
    in this statement), the verdict reads them there, and says too whether the group can be
    claimed now and whether its brief wants a promo code, which refuse the pick as well when there
    is none (:promo_code null) or the group cannot be claimed."""
    worker_id = sa.bindparam("worker_id", type_=sa.String)
    group_id = sa.bindparam("group_id", type_=sa.String)
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    count = (sa.select(sa.func.count()).select_from(Claim)
             .where(Claim.worker_id == worker_id, Claim.group_id == group_id, counts_against_limit(now))
             .scalar_subquery())
    if target is None:
        brand_id, limit = sa.bindparam("brand_id", type_=sa.String), sa.bindparam("max_per_worker", type_=sa.Integer)
        held, facts = (count if limited else sa.literal(0, sa.Integer)), []
    else:
        brand_id, limit = target.c.brand_id, target.c.max_per_worker
        held = sa.case((limit.is_(None), sa.literal(0, sa.Integer)), else_=count)
        facts = [target.c.claimable, target.c.promo_codes, target.c.max_per_worker]
    verdict = sa.select(
        suspensions.is_suspended(worker_id).label("suspended"),
        *eligibility.refusal_columns(worker_id, group_id, brand_id),
        held.label("held"), *facts,
    )
    verdict = (verdict if target is None else verdict.select_from(target)).cte("verdict")
    refused = sa.or_(verdict.c.suspended, *(c for c in verdict.c if c.name.startswith("refused_")))
    if target is not None:
        refused = sa.or_(refused, ~verdict.c.claimable,
                         sa.and_(verdict.c.max_per_worker.is_not(None), verdict.c.held >= verdict.c.max_per_worker),
                         sa.and_(verdict.c.promo_codes, sa.bindparam("promo_code", type_=sa.String).is_(None)))
    elif limited:
        refused = sa.or_(refused, verdict.c.held >= limit)
    pick = (sa.select(Task.id)
            .where(Task.group_id == group_id, Task.status == "open", ~refused)
            .order_by(Task.seq)
            .limit(1)
            .with_for_update(skip_locked=True, of=Task))
    return verdict, pick


def _claim_target() -> sa.CTE:
    """What the claim's second statement reads of its group (:group_id) for itself: the brief, the
    brand, the limit per worker, whether the brief wants promo codes, and whether the group can be
    claimed now (:now), as `_not_claimable` judges it."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    claimable = sa.and_(Brief.status == "live", Brief.starts_at <= now, Brief.ends_at > now,
                        TaskGroup.paused_reason.is_(None))
    return (sa.select(Brief.id.label("brief_id"), Brief.brand_id, TaskGroup.max_per_worker,
                      Brief.promo_codes, claimable.label("claimable"))
            .select_from(TaskGroup).join(Brief, Brief.id == TaskGroup.brief_id)
            .where(TaskGroup.id == sa.bindparam("group_id", type_=sa.String))
            .cte("target"))


def held_task_counts(brief_id: str) -> dict[str, int]:
    """group id → the brief's tasks held by a worker now (claimed, or proof in and not yet decided)."""
    return dict(db.session.execute(
        sa.select(Task.group_id, sa.func.count())
        .where(Task.brief_id == brief_id, Task.status.in_(["claimed", "submitted"]))
        .group_by(Task.group_id)
    ).all())


def active_claim(worker_id: str, task_id: str, *, lock: bool = False) -> Claim:
    """The worker's active claim on the task; someone else's task is 'not found'."""
    query = sa.select(Claim).where(Claim.task_id == task_id, Claim.worker_id == worker_id,
                                   Claim.status.in_(HOLDING))
    if lock:
        query = query.with_for_update()
    found = db.session.scalar(query)
    if found is None:
        raise NotFound(f"You hold no claim on task {task_id}.")
    return found


def release(worker_id: str, task_id: str) -> Claim:
    held = active_claim(worker_id, task_id, lock=True)
    if held.status != "active":
        raise Conflict("Proof is already in for this task; it can no longer be released.")
    lifecycle.release(sa.select(Claim.id).where(Claim.id == held.id))
    db.session.commit()
    return held


def expire_due_claims(batch_size: int = 1000) -> int:
    """End every active claim past its expiry (and UPLOAD_GRACE) as 'expired' and reopen its task, in batches.

    A claim whose row is locked (its proof being submitted right now) is skipped rather than
    waited on: the submission either lands in time or the next run expires it. Batches keep
    each statement's list of reopened task ids well under PostgreSQL's bind-parameter limit.
    """
    total = 0
    while True:
        due = (
            sa.select(Claim.id)
            .where(Claim.status == "active", Claim.expires_at <= utcnow() - UPLOAD_GRACE)
            .order_by(Claim.expires_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        ended = lifecycle.expire(due)
        db.session.commit()
        total += ended
        if ended < batch_size:
            return total


def brief_summary(brief: Brief) -> dict:
    """What a worker needs of the brief to do its tasks well."""
    return {
        "id": brief.id, "title": brief.title, "key_message": brief.key_message, "hook": brief.hook,
        "offer": brief.offer, "prohibitions": brief.prohibitions or [],
        "disclosure_required": brief.disclosure_required, "disclosure_on_media": brief.disclosure_on_media,
        "usage_rights": brief.usage_rights, "landing_url": brief.landing_url, "ends_at": brief.ends_at,
        "promo_codes": brief.promo_codes,
    }


def list_open_groups(worker_id: str, *, kind: str | None, brief_id: str | None, limit: int,
                     cursor: str | None) -> tuple[list[dict], str | None]:
    """Groups a worker may claim from now, newest brief first, with open and held counts.

    Live brief, inside its window, group not paused, at least one open task, the worker below its
    max_per_worker and let in by its eligibility and the brand's blocks, as NOT EXISTS / EXISTS
    subqueries on the group (the contract lists the groups the worker may take; the ones they
    hold are at /v1/me/claims). The page, the caller's held claims per group and the open counts
    (each bounded) are one statement, run on the autocommit engine: one round trip, and one
    snapshot for all of it.
    """
    params = _listing_params(kind, brief_id, limit, cursor)
    params["worker_id"] = worker_id
    return _listed(direct.read(_listing(bool(kind), bool(brief_id), bool(cursor)), params), limit)


def list_open_groups_as(secret: str, *, kind: str | None, brief_id: str | None, limit: int,
                        cursor: str | None) -> tuple[Principal, list[dict], str | None]:
    """`list_open_groups` for the caller behind a bearer secret, authenticated in the listing's
    own statement (the route's path, GET /v1/tasks): the credential's row (auth's
    CREDENTIAL_CHECK, a CTE) comes back on every row of the page, or as the only row, its page
    columns NULL, when nothing is listed; no row at all when no credential matches. 401 and 403
    as role_required("worker") answers them; the page is read for the worker only when the
    credential is a worker's, unrevoked and unexpired (judged by the statement's `now`), so
    another role's or a dead credential reads nothing."""
    params = _listing_params(kind, brief_id, limit, cursor)
    params["secret_hash"] = hash_secret(secret)
    rows = direct.read(_listing(bool(kind), bool(brief_id), bool(cursor), as_caller=True), params)
    principal = require_role(principal_from(rows[0] if rows else None, params["now"]), ("worker",))
    out, next_cursor = _listed([row for row in rows if row["g_id"] is not None], limit)
    return principal, out, next_cursor


def _listing_params(kind: str | None, brief_id: str | None, limit: int, cursor: str | None) -> dict:
    params: dict = {"now": utcnow(), "page_limit": limit + 1, "cap": REMAINING_COUNT_CAP + 1}
    if kind:
        params["kind"] = kind
    if brief_id:
        params["brief_id"] = brief_id
    if cursor:
        params["after_published"], params["after_brief"], params["after_position"] = decode_cursor(cursor, str, int)
    return params


def _listed(rows: list, limit: int) -> tuple[list[dict], str | None]:
    """The page's groups as the API shows them, from the listing's rows, and the next cursor."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["b_published_at"], last["b_id"], last["g_position"])
    out = []
    for row in rows:
        brief = SimpleNamespace(**{name[2:]: value for name, value in row.items() if name.startswith("b_")})
        held, max_per_worker, open_count = row["held"], row["g_max_per_worker"], row["open_count"]
        out.append({
            "id": row["g_id"], "brief_id": brief.id, "kind": row["g_kind"], "name": row["g_name"],
            "unit_price_cents": row["g_unit_price_cents"], "currency": brief.currency,
            "remaining_count": min(open_count, REMAINING_COUNT_CAP),
            "remaining_count_capped": open_count > REMAINING_COUNT_CAP,
            "instructions": row["g_instructions"], "proof": shown_proof(row["g_proof"]),
            "max_per_worker": max_per_worker, "held_by_you": held,
            "can_claim": max_per_worker is None or held < max_per_worker,
            "ends_at": brief.ends_at, "brief": brief_summary(brief),
        })
    return out, next_cursor


# Counting every open task of a 50,000-task group on each listing reads 50,000 index entries;
# past this many, "1000+" tells a worker all they need, and the count stays a bounded read.
REMAINING_COUNT_CAP = 1000

_LISTED_GROUP = ("id", "position", "kind", "name", "unit_price_cents", "instructions", "proof", "max_per_worker")
_LISTED_BRIEF = ("id", "currency", "published_at", "title", "key_message", "hook", "offer", "prohibitions",
                 "disclosure_required", "disclosure_on_media", "usage_rights", "landing_url", "ends_at",
                 "promo_codes")


# The credential behind the bearer secret's hash, as auth reads it (principal_from takes its row).
_CREDENTIAL = sa.text(CREDENTIAL_CHECK).columns(
    credential_id=sa.String, role=sa.String, principal_id=sa.String, revoked_at=sa.DateTime(timezone=True),
    expires_at=sa.DateTime(timezone=True), scopes=sa.String, last_used_at=sa.DateTime(timezone=True),
)


@functools.lru_cache(maxsize=16)
def _listing(by_kind: bool, by_brief: bool, after_cursor: bool, as_caller: bool = False) -> sa.Select:
    """The listing's statement for one combination of filters, built (and compiled by direct) once;
    every value is a bound parameter. `as_caller`: for the worker behind `secret_hash`, with the
    credential's columns (see list_open_groups_as)."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    if as_caller:
        cred = _CREDENTIAL.cte("cred")
        worker_id = (sa.select(cred.c.principal_id)
                     .where(cred.c.role == "worker", cred.c.revoked_at.is_(None),
                            sa.or_(cred.c.expires_at.is_(None), cred.c.expires_at > now))
                     .scalar_subquery())
    else:
        worker_id = sa.bindparam("worker_id", type_=sa.String)
    has_open_task = sa.select(Task.id).where(Task.group_id == TaskGroup.id, Task.status == "open").exists()
    caller_country = sa.select(Worker.country).where(Worker.id == worker_id).scalar_subquery()
    held = (sa.select(sa.func.count()).select_from(Claim)
            .where(Claim.group_id == TaskGroup.id, Claim.worker_id == worker_id, counts_against_limit(now))
            .scalar_subquery())
    # (A FROM subquery is not correlated by itself: without correlate() it would count every group's tasks.)
    capped = (sa.select(sa.literal(1)).where(Task.group_id == TaskGroup.id, Task.status == "open")
              .correlate(TaskGroup).limit(sa.bindparam("cap", type_=sa.Integer)).subquery("capped"))
    open_count = sa.select(sa.func.count()).select_from(capped).scalar_subquery()
    query = (
        sa.select(*(getattr(TaskGroup, c).label(f"g_{c}") for c in _LISTED_GROUP),
                  *(getattr(Brief, c).label(f"b_{c}") for c in _LISTED_BRIEF),
                  held.label("held"), open_count.label("open_count"))
        .join(Brief, Brief.id == TaskGroup.brief_id)
        .where(Brief.status == "live", Brief.starts_at <= now, Brief.ends_at > now,
               TaskGroup.paused_reason.is_(None), has_open_task,
               eligibility.allowed(TaskGroup.id, Brief.brand_id, worker_id, caller_country),
               sa.or_(TaskGroup.max_per_worker.is_(None), held < TaskGroup.max_per_worker))
    )
    if by_kind:
        query = query.where(TaskGroup.kind == sa.bindparam("kind", type_=sa.String))
    if by_brief:
        query = query.where(TaskGroup.brief_id == sa.bindparam("brief_id", type_=sa.String))
    if after_cursor:
        published = sa.bindparam("after_published", type_=Brief.published_at.type)
        after_brief = sa.bindparam("after_brief", type_=sa.String)
        query = query.where(sa.or_(
            sa.tuple_(Brief.published_at, Brief.id) < sa.tuple_(published, after_brief),
            sa.and_(Brief.published_at == published, Brief.id == after_brief,
                    TaskGroup.position > sa.bindparam("after_position", type_=sa.Integer)),
        ))
    query = (query.order_by(Brief.published_at.desc(), Brief.id.desc(), TaskGroup.position)
             .limit(sa.bindparam("page_limit", type_=sa.Integer)))
    if not as_caller:
        return query
    page = query.subquery("page")
    return (sa.select(cred, page).select_from(cred).outerjoin(page, sa.true())
            .order_by(page.c.b_published_at.desc(), page.c.b_id.desc(), page.c.g_position))


def shown_proof(rules: dict | None) -> dict:
    """A group's proof rules as a worker reads them: a link rule says where the tracked link goes."""
    rules = dict(rules or {})
    if rules.get("link"):
        rules["link"] = {**rules["link"], "where": LINK_PLACEMENT}
    return rules


def claim_view(claim: Claim, group: TaskGroup, brief: Brief, base_url: str, revision=None) -> dict:
    """A claim as the worker sees it: the task, the brief, the countdown and the tracked link; for
    proof sent back, what the reviewer asked, and the countdown runs to the revision's deadline."""
    expires_at = as_utc(revision.revision_deadline if revision is not None else claim.expires_at)
    return {
        "claim_id": claim.id,
        "task": {"id": claim.task_id, "group_id": group.id, "brief_id": brief.id, "kind": group.kind,
                 "name": group.name, "unit_price_cents": group.unit_price_cents, "currency": brief.currency,
                 "instructions": group.instructions, "proof": shown_proof(group.proof)},
        "brief": brief_summary(brief),
        "claimed_at": claim.claimed_at,
        "claim_expires_at": expires_at,
        # Server-side countdown, so a client with a wrong clock still shows the right time left.
        "expires_in_seconds": max(0, int((expires_at - utcnow()).total_seconds())),
        "tracked_code": claim.tracked_code,
        "tracked_link": base_url.rstrip("/") + f"/t/{claim.tracked_code}",
        "promo_code": claim.promo_code,
        "status": claim.status,
        "revision": None if revision is None else {
            "submission_id": revision.submission_id, "reason_code": revision.reason_code,
            "reason": revision.reason, "requested_at": revision.decided_at, "deadline": expires_at,
        },
    }


def describe_claim(claim: Claim, base_url: str) -> dict:
    """The view of a just-committed claim: the claim (expired by the commit), its group and brief in one query."""
    claim_id = sa.inspect(claim).identity[0]  # read without a refresh of its own
    claim, group, brief = db.session.execute(
        sa.select(Claim, TaskGroup, Brief)
        .join(TaskGroup, TaskGroup.id == Claim.group_id)
        .join(Brief, Brief.id == Claim.brief_id)
        .where(Claim.id == claim_id)
    ).one()
    return claim_view(claim, group, brief, base_url)


def my_active_claims(worker_id: str, base_url: str, *, limit: int,
                     cursor: str | None) -> tuple[list[dict], str | None]:
    """The worker's claims that can still take proof, newest first: those waiting for their first
    proof, and those whose proof came back for a revision (until the revision's deadline)."""
    from marketplace.proofs.service import revision_requests

    now = utcnow()
    revisions = revision_requests(now)
    query = (
        sa.select(Claim, TaskGroup, Brief, revisions)
        .join(TaskGroup, TaskGroup.id == Claim.group_id)
        .join(Brief, Brief.id == Claim.brief_id)
        .outerjoin(revisions, sa.and_(revisions.c.claim_id == Claim.id, Claim.status == "submitted"))
        .where(Claim.worker_id == worker_id,
               sa.or_(sa.and_(Claim.status == "active", Claim.expires_at > now),
                      revisions.c.submission_id.is_not(None)))
    )
    if cursor:
        claimed_at, claim_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(Claim.claimed_at, Claim.id)
                            < sa.tuple_(sa.literal(claimed_at, Claim.claimed_at.type), sa.literal(claim_id)))
    rows = db.session.execute(query.order_by(Claim.claimed_at.desc(), Claim.id.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][0].claimed_at, rows[-1][0].id)
    return [claim_view(row[0], row[1], row[2], base_url, row if row.submission_id is not None else None)
            for row in rows], next_cursor
