"""Who may take a task group's tasks: its eligibility rules and the brand's blocks.

The rules are stored as rows (group_eligibility, group_eligibility_values) so that the worker's
listing tests them in SQL, correlated on the group, and the claim tests the same expressions for
one group inside its transaction (`refusal`). The document as the brand sent it is kept in
group_eligibility.rules, and that is what the brief's read shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from marketplace.auth.models import Worker
from marketplace.errors import Forbidden, InvalidInput
from marketplace.extensions import db
from marketplace.workforce import reputation
from marketplace.workforce.models import (
    LIST_RULES,
    BrandBlock,
    GroupEligibility,
    GroupEligibilityValue,
    WorkerLanguage,
)

RULE_KEYS = ("countries", "languages", "min_approval_rate", "min_approved", "workers", "exclude_workers")


class NotEligible(Forbidden):
    """A claim kept out by a rule; `errors` names the rule (country, language, min_approval_rate,
    min_approved, invite_only, excluded, blocked)."""

    slug = "not-eligible"

    def __init__(self, rule: str, detail: str):
        super().__init__(detail, errors={rule: [detail]})
        self.rule = rule


# --- writing ---------------------------------------------------------------------------------------

def check_workers(groups: Sequence[dict]) -> None:
    """422 naming the field when a group's eligibility names a worker id that does not exist."""
    named = {(position, key): list(dict.fromkeys(rules[key]))
             for position, group in enumerate(groups)
             if (rules := group.get("eligibility"))
             for key in ("workers", "exclude_workers") if rules.get(key)}
    wanted = {worker for ids in named.values() for worker in ids}
    if not wanted:
        return
    known = set(db.session.scalars(sa.select(Worker.id).where(Worker.id.in_(sorted(wanted)))))
    errors = {}
    for (position, key), ids in named.items():
        unknown = [worker for worker in ids if worker not in known]
        if unknown:
            errors[f"task_groups[{position}].eligibility.{key}"] = [f"No such worker: {', '.join(unknown[:5])}."]
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"{first}: {errors[first][0]}", errors=errors)


def document(rules: dict | None) -> dict | None:
    """The eligibility as shown: every key, duplicates dropped, in the order sent."""
    if not rules:
        return None
    return {key: (list(dict.fromkeys(rules[key])) if key in LIST_RULES else rules[key])
            if rules.get(key) is not None else None for key in RULE_KEYS}


def rows(group_id: str, rules: dict | None) -> tuple[list[dict], list[dict]]:
    """The group_eligibility row and the group_eligibility_values rows of one group's rules."""
    shown = document(rules)
    if shown is None:
        return [], []
    rate = shown["min_approval_rate"]
    head = {"group_id": group_id, "min_approval_rate": None if rate is None else str(Decimal(str(rate))),
            "min_approved": shown["min_approved"], "has_countries": bool(shown["countries"]),
            "has_languages": bool(shown["languages"]), "invite_only": bool(shown["workers"]), "rules": shown}
    values = [{"group_id": group_id, "rule": rule, "value": value}
              for rule in LIST_RULES for value in shown[rule] or ()]
    return [head], values


def insert(conn: sa.Connection, heads: list[dict], values: list[dict]) -> None:
    if heads:
        conn.execute(sa.insert(GroupEligibility.__table__), heads)
    if values:
        conn.execute(sa.insert(GroupEligibilityValue.__table__), values)


def of_groups(group_ids: Iterable[str]) -> dict[str, dict]:
    """group id → its eligibility document, for the groups that have one, in one query."""
    ids = sorted(set(group_ids))
    if not ids:
        return {}
    return dict(db.session.execute(
        sa.select(GroupEligibility.group_id, GroupEligibility.rules).where(GroupEligibility.group_id.in_(ids))
    ).all())


# --- testing a worker against the rules ------------------------------------------------------------

def _values(group_id, rule: str, value) -> sa.Exists:
    v = GroupEligibilityValue
    return sa.select(v.value).where(v.group_id == group_id, v.rule == rule, v.value == value).exists()


def _speaks_one(group_id, worker_id) -> sa.Exists:
    v = GroupEligibilityValue
    return (sa.select(v.value).join(WorkerLanguage, sa.and_(WorkerLanguage.worker_id == worker_id,
                                                            WorkerLanguage.language == v.value))
            .where(v.group_id == group_id, v.rule == "languages").exists())


def failures(group_id, brand_id, worker_id, country) -> list[tuple[str, sa.ColumnElement[bool]]]:
    """(rule, condition true when the rule keeps the worker out), correlated on `group_id`,
    `brand_id` (the brief's brand) and `worker_id`/`country` (columns or bound values). The rate
    and the approved count are the reputation's own SQL, evaluated only for groups that set them."""
    e = GroupEligibility

    def with_rule(condition) -> sa.Exists:
        return sa.select(e.group_id).where(e.group_id == group_id, condition).exists()

    return [
        ("blocked", sa.select(BrandBlock.worker_id)
         .where(BrandBlock.brand_id == brand_id, BrandBlock.worker_id == worker_id).exists()),
        ("excluded", _values(group_id, "exclude_workers", worker_id)),
        ("invite_only", sa.and_(with_rule(e.invite_only.is_(True)), ~_values(group_id, "workers", worker_id))),
        ("country", sa.and_(with_rule(e.has_countries.is_(True)),
                            sa.or_(country.is_(None), ~_values(group_id, "countries", country)))),
        ("language", sa.and_(with_rule(e.has_languages.is_(True)), ~_speaks_one(group_id, worker_id))),
        ("min_approved", with_rule(sa.and_(e.min_approved.is_not(None),
                                           reputation.approved_count(worker_id) < e.min_approved))),
        ("min_approval_rate", with_rule(sa.and_(
            e.min_approval_rate.is_not(None),
            sa.func.coalesce(reputation.approval_rate(worker_id), -1) < e.min_approval_rate))),
    ]


def allowed(group_id, brand_id, worker_id, country) -> sa.ColumnElement[bool]:
    """True when no rule keeps the worker out: for the listing's WHERE."""
    return sa.and_(*(~condition for _, condition in failures(group_id, brand_id, worker_id, country)))


MESSAGES = {
    "blocked": "The brand has blocked you from its tasks.",
    "excluded": "You are excluded from this task group.",
    "invite_only": "This task group is invite-only and you are not invited.",
    "country": "This task group is open only to workers in certain countries; set or check your profile's country.",
    "language": "This task group needs a language your profile does not list.",
    "min_approved": "This task group needs more approved submissions than you have.",
    "min_approval_rate": "This task group needs a higher approval rate than yours (or one based on at least "
                         f"{reputation.MIN_DECIDED} decided submissions).",
}


def refusal_columns(worker_id, group_id, brand_id) -> list[sa.Label]:
    """One labelled boolean per rule, true when it keeps the worker out, for a caller's own
    SELECT (the claim reads them with its other checks in one round trip); `refused` reads the row."""
    country = sa.select(Worker.country).where(Worker.id == worker_id).scalar_subquery()
    checks = failures(group_id, brand_id, worker_id, country)
    return [condition.label(f"refused_{name}") for name, condition in checks]


def refused(row: Mapping[str, Any]) -> NotEligible | None:
    """The first rule (in the order of `failures`) that a row (a mapping) with `refusal_columns` says keeps the worker out."""
    for name in MESSAGES:
        if row[f"refused_{name}"]:
            return NotEligible(name, MESSAGES[name])
    return None


def refusal(worker_id: str, group_id: str, brand_id: str) -> NotEligible | None:
    """The rule that keeps the worker out of the group, or None. The claim reads the same
    columns after locking the worker's row, inside its transaction: a decision on the worker's
    work (reviews lock the same row) commits before that reads the rate, or waits for the claim."""
    columns = refusal_columns(sa.literal(worker_id), sa.literal(group_id), sa.literal(brand_id))
    return refused(db.session.execute(sa.select(*columns)).one())
