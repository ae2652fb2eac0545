"""The rules of briefs: the budget rule, ownership, the lifecycle, and publishing tasks in bulk."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload, selectinload

from marketplace.auth import require_role
from marketplace.auth.service import (
    CREDENTIAL_CHECK,
    Principal,
    authenticate,
    hash_secret,
    principal_from,
    require_scope,
)
from marketplace.briefs import documents
from marketplace.briefs.models import (
    Brief,
    TaskGroup,
    groups_bonus_reserve,
    groups_cost,
    groups_fee,
)
from marketplace.db import direct
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.errors import Forbidden, InvalidInput, NotFound
from marketplace.events import service as events
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.ledger.queries import escrow_movements
from marketplace.payments import service as payments
from marketplace.tasks.models import Task
from marketplace.workforce import eligibility


def create_brief(brand_id: str, data: dict) -> str:
    """Save a draft brief and its groups for a brand (or 422 over budget); returns its id.
    (The demo and the benchmarks; the API creates through create_brief_as.)"""
    brief, groups = _draft(data, brand_id)
    _insert(brief, groups)
    return brief["id"]


def create_brief_as(secret: str, data: dict, *, brief_id: str | None = None) -> tuple[Principal, dict]:
    """POST /v1/briefs: the caller behind `secret` saves a draft brief; returns (caller, document).

    On PostgreSQL one autocommit statement authenticates the caller and, if it is a brand's valid
    key, writes the brief and its groups: one round trip for the whole request. Every column is
    set here, so the answer is built from what was written, with no read back.

    `brief_id` is given for a request with an Idempotency-Key (the same id on every retry): if an
    earlier try wrote the brief but its answer was lost (a connection dropped after the commit,
    answered 503), the retry finds that brief instead of writing a second one.
    """
    brief, groups = _draft(data, brand_id=None, brief_id=brief_id)
    if db.engine.dialect.name != "postgresql":  # the embedded SQLite default: no data-modifying CTEs
        principal = brand_only(authenticate(secret))
        if brief_id is None or db.session.get(Brief, brief_id) is None:
            brief["brand_id"] = principal.id
            _insert(brief, groups)
            return principal, _document(brief, groups)
        return documents.read(secret, brief_id, ("brand",))
    now = brief["created_at"]
    heads, values = _eligibility_rows(groups)
    rows = direct.write(_CREATE_AUTHENTICATED, {
        "secret_hash": hash_secret(secret), "now": now,
        "brief": _json(brief), "groups": _json([_columns(g) for g in groups]),
        "eligibility": _json(heads), "eligibility_values": _json(values),
    })
    principal = brand_only(principal_from(rows[0] if rows else None, now))
    if not rows[0]["created"]:
        if brief_id is None:
            raise AssertionError("a valid brand key wrote no brief")  # the statement's filter and ours disagree
        return documents.read(secret, brief_id, ("brand",))  # written by an earlier try of this request
    brief["brand_id"] = principal.id
    return principal, _document(brief, groups)


def _insert(brief: dict, groups: list) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.insert(Brief.__table__), brief)
        conn.execute(sa.insert(TaskGroup.__table__), [_columns(g) for g in groups])
        eligibility.insert(conn, *_eligibility_rows(groups))


def brand_only(principal: Principal) -> Principal:
    """Who may create a brief: a brand's key with briefs:write (admins reach briefs, but create
    none), else 403."""
    require_role(principal, ("brand", "admin"))
    if principal.role != "brand":
        raise Forbidden("Briefs are created with a brand's API key.")
    return require_scope(principal, "briefs:write")


def _draft(data: dict, brand_id: str | None, brief_id: str | None = None) -> tuple[dict, list]:
    """Every column of the brief and of its groups (objects, for the budget rule), or 422."""
    now = utcnow()
    # Columns the data leaves out take their scalar default (disclosure_on_media for callers that build
    # the data themselves, as the demo does), else None.
    brief = {column.key: column.default.arg if column.default is not None and column.default.is_scalar else None
             for column in Brief.__table__.columns}
    brief.update(data, id=brief_id or new_id("brief"), brand_id=brand_id, fee_bps=current_app.config["PLATFORM_FEE_BPS"],
                 status="draft", created_at=now, updated_at=now)
    del brief["task_groups"]
    eligibility.check_workers(data["task_groups"])
    groups = []
    for position, group in enumerate(data["task_groups"]):
        row = {column.key: None for column in TaskGroup.__table__.columns}
        row.update(group, id=new_id("grp"), brief_id=brief["id"], position=position)
        # Not a column of task_groups: workforce's tables hold it (see _eligibility_rows).
        row["eligibility"] = eligibility.document(row.get("eligibility"))
        groups.append(SimpleNamespace(**row))
    _check_budget(brief, groups)
    return brief, groups


def _columns(group) -> dict:
    """A group's task_groups columns (its eligibility apart)."""
    return {key: value for key, value in vars(group).items() if key != "eligibility"}


def _eligibility_rows(groups: list) -> tuple[list[dict], list[dict]]:
    heads, values = [], []
    for group in groups:
        h, v = eligibility.rows(group.id, group.eligibility)
        heads += h
        values += v
    return heads, values


def _document(brief: dict, groups: list) -> dict:
    return documents.render(documents.shape(brief, groups, counts={}, moved={}))


# The caller's credential, and the brief and its groups if it is a brand's valid key, in one
# statement. The validity test is principal_from's and brand_only's (role, briefs:write), at the
# same :now; the row that comes back lets them say why nothing was written. json(b)_populate_record maps each key to the
# column of that name with the column's type, so the rows go in exactly as _draft built them.
_CREATE_AUTHENTICATED = sa.text(f"""
WITH cred AS ({CREDENTIAL_CHECK}), author AS (
    SELECT principal_id FROM cred
    WHERE role = 'brand' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)
      AND (scopes IS NULL OR ' ' || scopes || ' ' LIKE '% briefs:write %')
), brief AS (
    INSERT INTO briefs
    SELECT r.* FROM author,
        jsonb_populate_record(NULL::briefs, CAST(:brief AS jsonb) || jsonb_build_object('brand_id', author.principal_id)) r
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), task_groups_ AS (
    INSERT INTO task_groups
    SELECT g.* FROM json_populate_recordset(NULL::task_groups, CAST(:groups AS json)) g
    WHERE EXISTS (SELECT 1 FROM brief)
), eligibility_ AS (
    -- Foreign keys to the groups are checked at the end of the statement, when the groups are in.
    INSERT INTO group_eligibility
    SELECT e.* FROM json_populate_recordset(NULL::group_eligibility, CAST(:eligibility AS json)) e
    WHERE EXISTS (SELECT 1 FROM brief)
), eligibility_values_ AS (
    INSERT INTO group_eligibility_values
    SELECT v.* FROM json_populate_recordset(NULL::group_eligibility_values, CAST(:eligibility_values AS json)) v
    WHERE EXISTS (SELECT 1 FROM brief)
)
SELECT cred.*, EXISTS (SELECT 1 FROM brief) AS created FROM cred
""")


def _json(value) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def _check_budget(brief: dict, groups: list) -> None:
    cost, fees, reserve = groups_cost(groups), groups_fee(groups, brief["fee_bps"]), groups_bonus_reserve(groups)
    over = cost + fees + reserve - brief["budget_cents"]
    if over > 0:
        bonuses = f" and {reserve} cents of performance bonuses at their caps" if reserve else ""
        raise InvalidInput(
            f"The task groups cost {cost} cents plus {fees} cents of platform fees "
            f"({brief['fee_bps'] / 100:g}%){bonuses}, {over} cents over the budget.",
            errors={"budget_cents": [f"Must be at least {cost + fees + reserve} (tasks plus fees"
                                     f"{' plus bonus reserve' if reserve else ''}); it is {over} short."]},
        )


def _visible(query: sa.Select, principal: Principal) -> sa.Select:
    query = query.options(selectinload(Brief.task_groups))
    return query if principal.is_admin else query.where(Brief.brand_id == principal.id)


def get_brief(principal: Principal, brief_id: str, *, lock: bool = False) -> Brief:
    """The brief if the caller may see it. Another tenant's brief is 'not found', never 'forbidden'."""
    query = sa.select(Brief).where(Brief.id == brief_id)
    if not principal.is_admin:
        query = query.where(Brief.brand_id == principal.id)
    if lock:
        # FOR UPDATE cannot lock the outer join a joined load needs, so the groups come in a second query.
        query = query.options(selectinload(Brief.task_groups)).with_for_update()
    else:
        query = query.options(joinedload(Brief.task_groups))  # one round trip for the brief and its groups
    brief = db.session.execute(query).unique().scalar_one_or_none()
    if brief is None:
        raise NotFound(f"No brief {brief_id}.")
    return brief


def list_briefs(principal: Principal, *, limit: int, cursor: str | None, status: str | None):
    query = _visible(sa.select(Brief), principal)
    if status:
        query = query.where(Brief.status == status)
    return page(query, Brief, limit=limit, cursor=cursor)


def pause_group(group_id: str, reason: str) -> bool:
    """Pause one running group (the stop rule): no new claims from it. Conditional, so two runs
    pause it once; False when it was paused already."""
    table = TaskGroup.__table__
    paused = db.session.execute(
        sa.update(table).where(table.c.id == group_id, table.c.paused_reason.is_(None))
        .values(paused_reason=reason[:300]).returning(table.c.brief_id)
    ).scalar()
    if paused is None:
        return False
    # The brief keeps running its other groups, but for its brand this is the pause that matters:
    # brief.paused, with the group and the stop rule's reason.
    brief = db.session.get(Brief, paused)
    events.record(brief.brand_id, events.BRIEF_PAUSED, {
        "id": brief.id, "object": "brief", "title": brief.title, "status": brief.status, "reason": reason[:300],
        "paused_group_id": group_id, "budget_cents": brief.budget_cents, "currency": brief.currency})
    return True


def group_counts(brief_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """group id → task counts by status, for many briefs in one query."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(documents.COUNT_KEYS, 0))
    if not brief_ids:
        return counts
    by_status = (
        sa.select(Task.group_id, Task.status, sa.func.count())
        .where(Task.brief_id.in_(list(brief_ids)))
        .group_by(Task.group_id, Task.status)
    )
    # Rejections are a property of submissions (the task itself goes back to open). One round
    # trip for both: a task's status is never 'rejected', so the two halves cannot collide.
    submissions = db.metadata.tables["submissions"]  # by name: the proofs domain builds on this one
    rejected = (
        sa.select(submissions.c.group_id, sa.literal("rejected", sa.String), sa.func.count())
        .where(submissions.c.brief_id.in_(list(brief_ids)), submissions.c.status.in_(["rejected", "auto_rejected"]))
        .group_by(submissions.c.group_id)
    )
    rows = db.session.execute(sa.union_all(by_status, rejected))
    for group_id, status, n in rows:
        if status in documents.COUNT_KEYS:
            counts[group_id][status] = n
    return counts


def present(briefs: Sequence[Brief]) -> list[dict]:
    """Briefs with their group counts and money, in a fixed number of queries however many."""
    if not briefs:
        return []
    # Tasks are made only when a brief is first published: a never-published brief has none to count.
    counts = group_counts([b.id for b in briefs if b.published_at is not None])
    moved = escrow_movements([b.id for b in briefs])
    funding = payments.funding_of([b.id for b in briefs])
    rules = eligibility.of_groups(g.id for b in briefs for g in b.task_groups)
    columns = [c.key for c in Brief.__table__.columns]
    return [
        documents.shape({key: getattr(b, key) for key in columns}, b.task_groups, counts, moved.get(b.id, {}),
                        funding.get(b.id), rules)
        for b in briefs
    ]
