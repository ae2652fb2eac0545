"""A brief as the API shows it: its groups with task counts, and its money from the ledger.

Every brief response is shaped by `shape`: lists and lifecycle answers from ORM objects, dumped
by the BriefOut schema. The two hot paths skip the schema pass with `render`, which gives what the
dump would. `POST /v1/briefs` shapes the rows it has just written. `GET /v1/briefs/{id}`, the read
brands poll, gets everything in one statement: it authenticates the caller and fetches the brief,
its groups, their counts and the escrow's movements in a single round trip. Tests hold the three
ways equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from marketplace.auth import require_role
from marketplace.auth.service import (
    CREDENTIAL_CHECK,
    Principal,
    hash_secret,
    principal_from,
    require_scope,
)
from marketplace.briefs.models import (
    Brief,
    TaskGroup,
    fee_for,
    groups_bonus_reserve,
    groups_cost,
    groups_fee,
)
from marketplace.briefs.schemas import BriefOut, TaskGroupOut
from marketplace.db import direct
from marketplace.db.clock import rfc3339
from marketplace.errors import NotFound
from marketplace.http.fields import UTCDateTime
from marketplace.ledger.queries import escrow_movements_sql
from marketplace.ledger.service import escrow_code
from marketplace.payments.models import Payment
from marketplace.payments.service import FUNDING_COLUMNS, funding_sql, funding_view
from marketplace.workforce.models import GroupEligibility

# Escrow movements that are refunds: set aside, and given back when Stripe refused or failed one.
REFUND_KINDS = ("refund", "refund_failed", "refund_reversed")
COUNT_KEYS = ("open", "claimed", "submitted", "approved", "paid", "cancelled", "rejected")
# Task statuses counted as they are: every task is in exactly one, so once published they add up to
# the group's quantity. 'rejected' is apart: it counts submissions (a rejected task goes back to open).
TASK_COUNTS = ("open", "claimed", "submitted", "approved", "paid", "cancelled")

_OUT = BriefOut().fields
BRIEF_KEYS = tuple(k for k in _OUT if k not in ("task_groups", "money", "funding"))
GROUP_KEYS = tuple(k for k in TaskGroupOut().fields
                   if k not in ("fee_per_task_cents", "counts", "bonus", "eligibility"))
BONUS_KEYS = ("bonus_per_conversion_cents", "bonus_max_per_task_cents")
GROUP_COLUMNS = GROUP_KEYS + BONUS_KEYS
_TIMES = frozenset(k for k in BRIEF_KEYS if isinstance(_OUT[k], UTCDateTime))


def money(brief: Mapping[str, Any], groups: list, moved: Mapping[str, int]) -> dict[str, int | str]:
    """The money figures from the escrow's movements by entry kind (credit-normal, so credits are +).

    funded = spent + refunded + remaining (+ whatever is on its way back as a refund).
    """
    cost, fees, reserve = groups_cost(groups), groups_fee(groups, brief["fee_bps"]), groups_bonus_reserve(groups)
    return {
        "currency": brief["currency"],
        "budget_cents": brief["budget_cents"],
        "cost_cents": cost,
        "fee_cents": fees,
        "bonus_reserve_cents": reserve,
        "committed_cents": cost + fees + reserve,
        "funded_cents": moved.get("funding", 0),
        "spent_cents": -moved.get("approval", 0),
        # Net of refunds Stripe refused or later failed, whose money came back to the escrow.
        "refunded_cents": -sum(moved.get(kind, 0) for kind in REFUND_KINDS),
        "remaining_cents": sum(moved.values()),
    }


def shape(brief: Mapping[str, Any], groups: list, counts: Mapping[str, Mapping[str, int]],
          moved: Mapping[str, int], funding: Mapping[str, Any] | None = None,
          eligibility: Mapping[str, dict] | None = None) -> dict:
    """The document of one brief. `groups` are objects with the group columns as attributes;
    `funding` is payments' view of its latest payment (none: not asked to pay yet); a group's
    eligibility is its `eligibility` attribute when it has one, else looked up in `eligibility`."""
    fee_bps = brief["fee_bps"]
    return {
        **{key: brief[key] for key in BRIEF_KEYS},
        "task_groups": [
            {
                **{key: getattr(g, key) for key in GROUP_KEYS},
                "fee_per_task_cents": fee_for(g.unit_price_cents, fee_bps),
                "bonus": {"per_conversion_cents": g.bonus_per_conversion_cents,
                          "max_per_task_cents": g.bonus_max_per_task_cents}
                if getattr(g, "bonus_per_conversion_cents", None) else None,
                "eligibility": getattr(g, "eligibility", None) or (eligibility or {}).get(g.id),
                "counts": dict(counts.get(g.id) or dict.fromkeys(COUNT_KEYS, 0)),
            }
            for g in groups
        ],
        "money": money(brief, groups, moved),
        "funding": dict(funding or funding_view(None, None, None, None)),
    }


def render(document: dict) -> dict:
    """What `BriefOut().dump(document)` gives, without the schema pass: times as RFC 3339."""
    for key in _TIMES:
        document[key] = rfc3339(document[key])
    document["funding"]["failed_at"] = rfc3339(document["funding"]["failed_at"])
    return document


# --- the one-statement read ------------------------------------------------------------------------

# Portable SQL (the embedded SQLite default runs it too). One row per group, in position order; the
# credential's columns on every row; no row at all when no credential matches. Counts are
# index-only scans of ix_tasks_group_status_seq per group; the escrow's movements are summed once.
_ESCROW_MOVED = escrow_movements_sql(
    {"m_funding": ("funding",), "m_approval": ("approval",), "m_refund": REFUND_KINDS}, total="m_total")
_READ = sa.text(f"""
WITH cred AS ({CREDENTIAL_CHECK}), brief AS (
    SELECT b.* FROM briefs b JOIN cred ON cred.role = 'admin' OR b.brand_id = cred.principal_id
    WHERE b.id = :brief_id
), moved AS ({_ESCROW_MOVED})
SELECT cred.credential_id, cred.role, cred.principal_id, cred.revoked_at, cred.expires_at, cred.scopes,
       cred.last_used_at,
       {", ".join(f"brief.{k}" for k in BRIEF_KEYS)},
       {", ".join(f"g.{k} AS g_{k}" for k in GROUP_COLUMNS)},
       (SELECT e.rules FROM group_eligibility e WHERE e.group_id = g.id) AS g_eligibility,
       {", ".join(f"(SELECT count(*) FROM tasks t WHERE t.group_id = g.id AND t.status = '{s}') AS n_{s}"
                  for s in TASK_COUNTS)},
       (SELECT count(*) FROM submissions s
        WHERE s.group_id = g.id AND s.status IN ('rejected', 'auto_rejected')) AS n_rejected,
       moved.*,
       {funding_sql("brief.id")}
FROM cred
LEFT JOIN brief ON true
LEFT JOIN task_groups g ON g.brief_id = brief.id
CROSS JOIN moved
ORDER BY g.position
""").columns(
    # By name, the model's types, so both databases hand back the same Python values (JSON, aware times, booleans).
    last_used_at=sa.DateTime(timezone=True),
    **{k: Brief.__table__.c[k].type for k in BRIEF_KEYS},
    **{"g_" + k: TaskGroup.__table__.c[k].type for k in GROUP_COLUMNS},
    g_eligibility=GroupEligibility.__table__.c.rules.type,
    **{"f_" + k: Payment.__table__.c[k].type for k in FUNDING_COLUMNS},
)


class _Group:
    """A group's columns from a row of the read, as attributes (what `shape` takes)."""

    __slots__ = (*GROUP_COLUMNS, "eligibility")

    def __init__(self, row: Mapping[str, Any]) -> None:
        for key in (*GROUP_COLUMNS, "eligibility"):
            setattr(self, key, row["g_" + key])


def read(secret: str, brief_id: str, roles: tuple[str, ...]) -> tuple[Principal, dict]:
    """The caller and the brief's rendered document, in one round trip: 401/403 as any route
    answers them, 404 for a brief that does not exist or is another tenant's."""
    rows = direct.read(_READ, {"secret_hash": hash_secret(secret), "brief_id": brief_id,
                               "escrow_code": escrow_code(brief_id)})
    # The key's scopes come back on the same row: checked here, no second statement.
    principal = require_scope(require_role(principal_from(rows[0] if rows else None), roles), "briefs:read")
    first = rows[0]
    if first["id"] is None:
        raise NotFound(f"No brief {brief_id}.")
    groups = [_Group(row) for row in rows]
    counts = {row["g_id"]: {**{s: row["n_" + s] for s in TASK_COUNTS}, "rejected": row["n_rejected"]}
              for row in rows}
    moved = {}
    if first["m_total"] is not None:  # no lines at all: never funded
        moved = {"funding": first["m_funding"], "approval": first["m_approval"], "refund": first["m_refund"],
                 "other": first["m_total"] - first["m_funding"] - first["m_approval"] - first["m_refund"]}
    funding = funding_view(*(first["f_" + k] for k in FUNDING_COLUMNS))
    return principal, render(shape(first, groups, counts, {k: int(v) for k, v in moved.items()}, funding))
