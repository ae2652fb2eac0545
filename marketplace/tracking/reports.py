"""Results of a brief: spend, clicks, conversions and revenue per group, worker, day and brief; verdicts.

One aggregate statement answers every dimension at once: clicks, conversions and approved spend
are each grouped by all the dimensions' keys in one pass (GROUPING SETS on PostgreSQL) and joined
on (dimension, key), never a query per row. Clicks are read from their hourly roll-up
(clicks_hourly: a brief with 10,000,000 clicks is a few thousand rows there); conversions (a
brand's sales, far fewer) are read raw, index-only.

Spend is read from the ledger alone: the debit side of each "approval" entry (the unit price
plus the platform fee) whose ref_id is an approved or paid submission of the brief, plus the
bonuses paid on the brief (each booked once at its amount, escrow → worker: tests/ledger_invariants
checks it). Prices are never recomputed from the groups, so a later price or fee change can not
rewrite history. A one-off bonus belongs to no group: it counts for its brief, worker and day.

Arithmetic is exact (integers and fractions); ratios are rounded half up only when shown:
cents ratios (CPA, cost per action) to hundredths of a cent, other ratios (ROAS, conversions per
approved task) to 4 decimal places, both as decimal strings. Undefined ratios are null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from flask import current_app

from marketplace.bonuses.models import Bonus
from marketplace.briefs.models import Brief
from marketplace.extensions import db
from marketplace.ledger.queries import entry_debits
from marketplace.proofs.models import Submission
from marketplace.tasks.models import Claim
from marketplace.tracking.models import ClickHourly, Conversion
from marketplace.workforce import reputation

DIMENSIONS = ("group", "worker", "day", "brief")
APPROVED = ("approved", "paid")
# A stop-rule group is paused once its CPA exceeds this multiple of the brief's target.
STOP_RULE_MULTIPLE = 3
# Verdicts: the lower CPA wins when it is at least this much lower than the other's; within the
# tie margin it is a tie (both relative to the higher CPA); anything in between is undecided.
WINNER_MARGIN = Fraction(20, 100)
TIE_MARGIN = Fraction(10, 100)
TOP_PERFORMER_SHARE = Fraction(20, 100)


@dataclass
class Figures:
    """What one key (a group, a worker, a day, a brief) has spent and earned."""

    key: str
    spend_cents: int = 0
    approved: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_cents: int = 0

    @property
    def cpa(self) -> Fraction | None:
        return Fraction(self.spend_cents, self.conversions) if self.conversions else None

    def as_dict(self) -> dict:
        return {
            "spend_cents": self.spend_cents,
            "approved_actions": self.approved,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "revenue_cents": self.revenue_cents,
            "cost_per_action_cents": cents_ratio(self.spend_cents, self.approved),
            "cpa_cents": cents_ratio(self.spend_cents, self.conversions),
            "roas": plain_ratio(self.revenue_cents, self.spend_cents),
        }


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _decimal(value: Fraction, places: int) -> str:
    scaled = _round_half_up(value * 10**places)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def cents_ratio(numerator: int, denominator: int) -> str | None:
    """numerator / denominator in cents, to hundredths of a cent: 660 / 9 → '73.33'; x / 0 → None."""
    return _decimal(Fraction(numerator, denominator), 2) if denominator else None


def plain_ratio(numerator: int, denominator: int) -> str | None:
    """A dimensionless ratio to 4 decimal places: 5400 / 660 → '8.1818'; x / 0 → None."""
    return _decimal(Fraction(numerator, denominator), 4) if denominator else None


def analytic_transaction() -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction. The planner cannot estimate how
    many groups a grouped expression (a UTC day) yields, guesses one per row, and then spends
    ~700 ms compiling a plan that runs in 10 ms. SET LOCAL ends with the transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))


def _day(column):
    """The UTC calendar day of a timestamp, in SQL (a date: far cheaper per row than formatting text).
    The time zone is a literal, not a parameter, so the expression is the same wherever it is
    repeated (GROUPING needs that)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), column), sa.Date)
    return sa.func.date(column)


def _as_key(expression, dimension: str):
    """A dimension's key as text, computed on the grouped rows only."""
    if dimension == "day" and db.session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(expression, sa.literal_column("'YYYY-MM-DD'"))
    return sa.cast(expression, sa.String)


def _keys(columns) -> dict[str, sa.ColumnElement]:
    """dimension → the key expression of one source (clicks, conversions or approvals)."""
    return {"group": columns["group_id"], "worker": columns["worker_id"], "day": _day(columns["at"]),
            "brief": columns["brief_id"]}


def _by_dimensions(select_measures: sa.Select, keys: dict[str, sa.ColumnElement], dimensions: Sequence[str],
                   name: str) -> sa.CTE:
    """Measures grouped by every requested dimension as (dim, k, measures…) rows.

    On PostgreSQL one pass with GROUPING SETS (so 100,000 clicks are read once for all four
    dimensions); elsewhere (the embedded SQLite) a UNION ALL of one GROUP BY per dimension.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        dim = sa.literal_column(f"'{dimensions[-1]}'")
        if len(dimensions) > 1:
            dim = sa.case(*[(sa.func.grouping(keys[d]) == 0, sa.literal_column(f"'{d}'")) for d in dimensions[:-1]],
                          else_=dim)
        key = sa.func.coalesce(*[_as_key(keys[d], d) for d in dimensions])
        return (select_measures.add_columns(dim.label("dim"), key.label("k"))
                .group_by(sa.func.grouping_sets(*[keys[d] for d in dimensions])).cte(name))
    parts = [select_measures.add_columns(sa.literal(d).label("dim"), _as_key(keys[d], d).label("k"))
             .group_by(keys[d]) for d in dimensions]
    return sa.union_all(*parts).cte(name)


def figures_by(dimensions: Sequence[str], brief_ids: Sequence[str]) -> dict[str, dict[str, Figures]]:
    """dimension → key → Figures over the given briefs, for all the dimensions in one statement.

    Clicks, conversions and approvals are each aggregated once (every dimension at a time) and
    the three are joined on (dimension, key).
    """
    brief_ids, dimensions = list(brief_ids), list(dimensions)
    out: dict[str, dict[str, Figures]] = {d: {} for d in dimensions}
    if not brief_ids or not dimensions:
        return out
    hourly_t, conversions_t = ClickHourly.__table__, Conversion.__table__
    submissions, approvals = Submission.__table__, entry_debits("approval")

    # Clicks from their hourly roll-up (one row per group, worker and hour however many clicks), which
    # the click's own statement keeps: the same numbers as counting the raw clicks, read in a few rows.
    clicks = _by_dimensions(
        sa.select(sa.func.sum(hourly_t.c.clicks).label("clicks")).where(hourly_t.c.brief_id.in_(brief_ids)),
        _keys({**hourly_t.c, "at": hourly_t.c.hour}), dimensions, "clicks_by_key")
    conversions = _by_dimensions(
        sa.select(sa.func.count().label("conversions"), sa.func.sum(conversions_t.c.value_cents).label("revenue"))
        .where(conversions_t.c.brief_id.in_(brief_ids)),
        _keys({**conversions_t.c, "at": conversions_t.c.occurred_at}), dimensions, "conversions_by_key")
    # The debit side of an approval entry is what the approval cost the brief: price plus fee.
    spend = _by_dimensions(
        sa.select(sa.func.count(sa.distinct(submissions.c.id)).label("approved"),
                  sa.func.sum(approvals.c.cents).label("spend"))
        .select_from(submissions.join(approvals, approvals.c.ref_id == submissions.c.id))
        .where(submissions.c.brief_id.in_(brief_ids), submissions.c.status.in_(APPROVED)),
        _keys({**submissions.c, "at": approvals.c.created_at}), dimensions, "spend_by_key")

    bonuses_t = Bonus.__table__
    bonuses = _by_dimensions(
        sa.select(sa.func.sum(bonuses_t.c.amount_cents).label("bonus")).where(bonuses_t.c.brief_id.in_(brief_ids)),
        _keys({**bonuses_t.c, "at": bonuses_t.c.created_at}), dimensions, "bonuses_by_key")

    keys = sa.union(*[sa.select(cte.c.dim, cte.c.k)
                      for cte in (clicks, conversions, spend, bonuses)]).subquery("all_keys")

    def on(cte):
        return sa.and_(cte.c.dim == keys.c.dim, cte.c.k == keys.c.k)

    query = (
        sa.select(keys.c.dim, keys.c.k, spend.c.spend, bonuses.c.bonus, spend.c.approved, clicks.c.clicks,
                  conversions.c.conversions, conversions.c.revenue)
        .select_from(keys)
        .outerjoin(spend, on(spend)).outerjoin(bonuses, on(bonuses)).outerjoin(clicks, on(clicks))
        .outerjoin(conversions, on(conversions))
    )
    for dim, key, spent, bonus, approved, n_clicks, n_conversions, revenue in db.session.execute(query):
        if key is None:  # one-off bonuses by group: they belong to none
            continue
        out[dim][key] = Figures(key, int(spent or 0) + int(bonus or 0), int(approved or 0), int(n_clicks or 0),
                                int(n_conversions or 0), int(revenue or 0))
    return out


def figures(dimension: str, brief_ids: Sequence[str]) -> dict[str, Figures]:
    """key → Figures for one dimension over the given briefs, in one statement."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    return figures_by([dimension], brief_ids)[dimension]


# --- verdicts -------------------------------------------------------------------------------------


def verdict(a: Figures, b: Figures, min_conversions: int) -> dict:
    """Compare two variants' CPA: 'winner' (≥ 20% lower), 'tie' (within 10%) or 'undecided'."""
    out = {"group_ids": [a.key, b.key], "outcome": "undecided", "winner_group_id": None,
           "cpa_difference_percent": None}
    if a.conversions < max(min_conversions, 1) or b.conversions < max(min_conversions, 1):
        out["reason"] = f"Each variant needs at least {max(min_conversions, 1)} conversions."
        return out
    low, high = sorted((a, b), key=lambda f: (f.cpa, f.key))
    if high.cpa == 0:
        out.update(outcome="tie", cpa_difference_percent="0.00", reason="Both variants converted at no cost.")
        return out
    difference = (high.cpa - low.cpa) / high.cpa
    out["cpa_difference_percent"] = _decimal(difference * 100, 2)
    if difference >= WINNER_MARGIN:
        out.update(outcome="winner", winner_group_id=low.key,
                   reason=f"CPA at least {WINNER_MARGIN * 100}% lower than the other variant's.")
    elif difference <= TIE_MARGIN:
        out.update(outcome="tie", reason=f"CPAs within {TIE_MARGIN * 100}% of each other.")
    else:
        out["reason"] = (f"CPAs differ by more than {TIE_MARGIN * 100}% but less than {WINNER_MARGIN * 100}%; "
                         "more data needed.")
    return out


def verdicts(groups: Sequence[tuple[str, Figures]], min_conversions: int) -> list[dict]:
    """Every pair of groups of the same kind (the variants of one experiment), in group order."""
    out = []
    for i, (kind_a, a) in enumerate(groups):
        for kind_b, b in groups[i + 1:]:
            if kind_a == kind_b:
                out.append({"kind": kind_a, **verdict(a, b, min_conversions)})
    return out


def top_performers(workers: Sequence[Figures]) -> list[str]:
    """The top 20% (rounded up) of workers with approved work, by conversions per approved task.

    Workers tied with the last one in are in too; a worker without conversions never is.
    """
    ranked = sorted((w for w in workers if w.approved and w.conversions),
                    key=lambda w: (-Fraction(w.conversions, w.approved), -w.conversions, w.key))
    eligible = [w for w in workers if w.approved]
    if not ranked:
        return []
    take = min(len(ranked), math.ceil(len(eligible) * TOP_PERFORMER_SHARE))
    cutoff = Fraction(ranked[take - 1].conversions, ranked[take - 1].approved)
    return [w.key for w in ranked if Fraction(w.conversions, w.approved) >= cutoff]


def top_workers(workers: Sequence[Figures], approval_rates: dict[str, float | None]) -> list[str]:
    """The top 20% (rounded up) of workers with approved work, by CPA (lowest first), then by approval
    rate (highest first; none yet ranks last): who to invite back when a brief scales its winners.

    Workers tied with the last one in (same CPA and approval rate) are in too; a worker without
    conversions has no CPA and never is.
    """
    def rank(w: Figures) -> tuple:
        rate = approval_rates.get(w.key)
        return (w.cpa, rate is None, -(rate or 0))

    ranked = sorted((w for w in workers if w.approved and w.conversions), key=lambda w: (*rank(w), w.key))
    if not ranked:
        return []
    take = min(len(ranked), math.ceil(sum(1 for w in workers if w.approved) * TOP_PERFORMER_SHARE))
    cutoff = rank(ranked[take - 1])
    return [w.key for w in ranked if rank(w) <= cutoff]


def breaches_stop_rule(brief: Brief, group: Figures, min_spend_cents: int) -> bool:
    """CPA > 3 × target after the minimum spend. No conversions at all counts as an infinite CPA:
    with spend > 3 × target even the next conversion could not bring it under the line."""
    if not brief.target_cpa_cents or group.spend_cents < max(min_spend_cents, 1):
        return False
    return group.spend_cents > STOP_RULE_MULTIPLE * brief.target_cpa_cents * group.conversions


# --- promo codes -----------------------------------------------------------------------------------


def promo_codes_by_worker(brief: Brief, worker_ids: Sequence[str]) -> dict[str, list[dict]]:
    """worker id → the promo codes of their claims on the brief, with the conversions reported by
    each, in one statement (none for a brief without promo codes). Only the report's workers: a
    conversion by promo code makes its worker one of them, so the group totals add up from these."""
    if not brief.promo_codes or not worker_ids:
        return {}
    claims, conversions = Claim.__table__, Conversion.__table__
    rows = db.session.execute(
        sa.select(claims.c.worker_id, claims.c.promo_code, claims.c.group_id, claims.c.task_id,
                  sa.func.count(conversions.c.id), sa.func.coalesce(sa.func.sum(conversions.c.value_cents), 0))
        .select_from(claims.outerjoin(conversions, sa.and_(conversions.c.claim_id == claims.c.id,
                                                           conversions.c.attributed_by == "promo_code")))
        .where(claims.c.brief_id == brief.id, claims.c.promo_code.is_not(None),
               claims.c.worker_id.in_(list(worker_ids)))
        .group_by(claims.c.id)
        .order_by(claims.c.claimed_at, claims.c.id)
    )
    out: dict[str, list[dict]] = {}
    for worker_id, promo_code, group_id, task_id, n, revenue in rows:
        out.setdefault(worker_id, []).append({"promo_code": promo_code, "group_id": group_id, "task_id": task_id,
                                              "conversions": int(n), "revenue_cents": int(revenue)})
    return out


# --- the report -----------------------------------------------------------------------------------


def click_counting() -> dict:
    """How the clicks in a report were counted (tracking.service records them so)."""
    config = current_app.config
    return {"unique_per": "visitor", "window_seconds": config["CLICK_VISIT_WINDOW_SECONDS"],
            "address_cap_per_minute": config["CLICK_CAP_PER_ADDRESS_PER_MINUTE"]}


def brief_report(brief: Brief) -> dict:
    """The whole report of one brief: one aggregate statement for every dimension, one for workers' names
    (and, for a brief with promo codes, one for its workers' codes)."""
    from marketplace.auth.models import Worker

    min_conversions = current_app.config["VERDICT_MIN_CONVERSIONS"]
    min_spend = current_app.config["STOP_RULE_MIN_SPEND_CENTS"]
    analytic_transaction()
    every = figures_by(DIMENSIONS, [brief.id])
    by_group, by_worker, by_day = every["group"], every["worker"], every["day"]
    total = every["brief"].get(brief.id, Figures(brief.id))

    groups = []
    for group in brief.task_groups:
        f = by_group.get(group.id, Figures(group.id))
        groups.append((group.kind, f))
    names = dict(db.session.execute(
        sa.select(Worker.id, Worker.display_name).where(Worker.id.in_(list(by_worker)))
    ).all()) if by_worker else {}
    workers = sorted(by_worker.values(), key=lambda w: (-w.conversions, -w.spend_cents, w.key))
    top = top_performers(workers)
    reputations = reputation.of_workers(by_worker)
    threshold = STOP_RULE_MULTIPLE * brief.target_cpa_cents if brief.target_cpa_cents else None
    promos = promo_codes_by_worker(brief, list(by_worker))
    promo_by_group: dict[str, list[int]] = {}
    for codes in promos.values():
        for code in codes:
            totals = promo_by_group.setdefault(code["group_id"], [0, 0])
            totals[0] += code["conversions"]
            totals[1] += code["revenue_cents"]
    return {
        "brief_id": brief.id,
        "currency": brief.currency,
        "target_cpa_cents": brief.target_cpa_cents,
        "totals": total.as_dict(),
        "groups": [
            {"group_id": g.id, "kind": g.kind, "name": g.name, "unit_price_cents": g.unit_price_cents,
             "paused_reason": g.paused_reason,
             "over_stop_threshold": breaches_stop_rule(brief, f, min_spend),
             "promo_code_conversions": promo_by_group.get(g.id, [0, 0])[0],
             "promo_code_revenue_cents": promo_by_group.get(g.id, [0, 0])[1],
             **f.as_dict()}
            for g, (_, f) in zip(brief.task_groups, groups, strict=True)
        ],
        "workers": [
            {"worker_id": w.key, "display_name": names.get(w.key), **w.as_dict(),
             "conversions_per_approved_task": plain_ratio(w.conversions, w.approved),
             "top_performer": w.key in top, "reputation": reputations.get(w.key),
             "promo_codes": promos.get(w.key, [])}
            for w in workers
        ],
        "daily": [{"date": day, **by_day[day].as_dict()} for day in sorted(by_day)],
        "verdicts": verdicts(groups, min_conversions),
        "top_performers": top,
        "top_workers": top_workers(workers, {k: (r or {}).get("approval_rate") for k, r in reputations.items()}),
        "click_counting": click_counting(),
        "rules": {
            "verdict_min_conversions": min_conversions,
            "winner_margin_percent": int(WINNER_MARGIN * 100),
            "tie_margin_percent": int(TIE_MARGIN * 100),
            "stop_rule_multiple": STOP_RULE_MULTIPLE,
            "stop_rule_threshold_cpa_cents": threshold,
            "stop_rule_min_spend_cents": min_spend,
        },
    }
