"""Scaling the winners: a running brief takes a new task group, paid for by what its escrow holds
beyond what it has promised (marketplace.bonuses.lock_unspent: open tasks of running groups, work in
hand, performance bonuses not yet earned).

No money moves when a group is added: the money is in the brief's escrow already, and from now on
the new group's tasks (and its bonus cap) are among what the escrow promises, so neither a one-off
bonus, another new group nor a closing refund can take it.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.audit import service as audit
from marketplace.auth.service import Principal
from marketplace.bonuses.service import RUNNING, lock_unspent
from marketplace.briefs.models import (
    Brief,
    TaskGroup,
    groups_bonus_reserve,
    groups_cost,
    groups_fee,
)
from marketplace.briefs.service import get_brief
from marketplace.db.ids import new_id
from marketplace.errors import Conflict, InvalidInput
from marketplace.extensions import db
from marketplace.tasks import lifecycle as tasks
from marketplace.workforce import eligibility

MAX_GROUPS = 50  # as many as a brief is created with


def add_task_group(principal: Principal, brief_id: str, data: dict) -> Brief:
    """Add a group (the body of one group in POST /v1/briefs) to a live or paused brief and open its
    tasks, if the brief's unspent escrow covers every task at its price plus fee and the group's
    performance bonus to its cap; else 422 saying how much is missing.

    The brief is locked first, then its escrow (as bonuses and closing do), so two adds at once are
    judged one after the other: the second sees the first's group among what is promised.
    """
    brief = get_brief(principal, brief_id, lock=True)
    if brief.status not in RUNNING:
        raise Conflict(f"Task groups are added to a live or paused brief; this brief is {brief.status}.")
    if len(brief.task_groups) >= MAX_GROUPS:
        raise InvalidInput(f"A brief has at most {MAX_GROUPS} task groups; this one has {len(brief.task_groups)}.")
    data = dict(data)
    rules = eligibility.document(data.pop("eligibility", None))
    eligibility.check_workers([{"eligibility": rules}])
    group = TaskGroup(**data, id=new_id("grp"), brief_id=brief.id,
                      position=max((g.position for g in brief.task_groups), default=-1) + 1)
    cost, fees, reserve = groups_cost([group]), groups_fee([group], brief.fee_bps), groups_bonus_reserve([group])
    needed = cost + fees + reserve
    spare = max(0, lock_unspent(brief)[0])
    if needed > spare:
        message = (f"The new group costs {needed} cents ({cost} for its tasks, {fees} of platform fees"
                   f"{f', {reserve} of performance bonus at its cap' if reserve else ''}); the brief's unspent "
                   f"escrow is {spare} cents, {needed - spare} cents short.")
        raise InvalidInput(message, errors={"quantity": [message]})
    db.session.execute(sa.insert(TaskGroup.__table__).values(
        {column.key: getattr(group, column.key) for column in TaskGroup.__table__.columns}))
    # The invite list (e.g. the report's top_workers) and the other rules live in workforce's tables.
    eligibility.insert(db.session.connection(), *eligibility.rows(group.id, rules))
    tasks.create_tasks(brief.id, group_id=group.id)
    audit.record(f"{principal.role}:{principal.id}", "task_group.added", group.id, None, {
        "brief_id": brief.id, "kind": group.kind, "quantity": group.quantity,
        "unit_price_cents": group.unit_price_cents, "committed_cents": needed, "unspent_before_cents": spare})
    db.session.commit()
    return db.session.get(Brief, brief.id, populate_existing=True)
