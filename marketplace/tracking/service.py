"""Tracked links (recording a click, building the landing URL), conversions, and the stop rule."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import sqlite

from marketplace.bonuses import service as bonuses
from marketplace.briefs import service as briefs_service
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.db import direct
from marketplace.db.clock import as_utc, rfc3339, utcnow
from marketplace.db.ids import new_id
from marketplace.db.upsert import upsert_insert
from marketplace.errors import Conflict, InvalidInput, NotFound
from marketplace.extensions import db
from marketplace.keyed import keyed_digest
from marketplace.tasks import promo_codes
from marketplace.tasks.models import Claim
from marketplace.tracking import reports
from marketplace.tracking.models import Click, ClickHourly, Conversion

log = logging.getLogger(__name__)

# The landing page learns the click's id, so a brand can report a conversion against the exact click.
CLICK_PARAM = "mkt_click"

# --- tracked links ----------------------------------------------------------------------------------

# One statement, one round trip: resolve the code, insert the click unless this visitor already
# clicked this link in this window (then the earlier click's id is handed back) or the address is
# over its cap for the minute (then no click id at all), count it in its hour's roll-up
# (clicks_hourly, which reports read), and hand back what the redirect needs. An unknown code
# inserts nothing and returns no row. The unique index of the click's partition settles concurrent
# repeats (ON CONFLICT DO NOTHING without a target: a partitioned table's unique index is per
# partition); a repeat inserts no click and so counts nothing, and the roll-up is counted in the
# same statement, hence the same transaction, as the click: a reader sees both or neither. The
# time bounds let PostgreSQL look only in the partitions the window and the minute fall in. The
# cap is read, not locked, so requests from one address at the same instant may pass it by as
# many as arrive together (a bound on inflation, not an exact quota).
_RECORD_CLICK_PG = sa.text("""
WITH target AS (
    SELECT c.id AS claim_id, c.task_id, c.group_id, c.brief_id, c.worker_id, b.landing_url, g.kind
    FROM claims c
    JOIN briefs b ON b.id = c.brief_id
    JOIN task_groups g ON g.id = c.group_id
    WHERE c.tracked_code = :code
), earlier AS (
    SELECT k.id FROM clicks k JOIN target t ON k.claim_id = t.claim_id
    WHERE k.visitor_hash = :visitor_hash AND k.visit_window = :visit_window
      AND k.clicked_at >= :window_start AND k.clicked_at < :window_end
), address AS (
    SELECT count(*) >= :cap AS over_cap
    FROM (SELECT 1 FROM clicks WHERE ip_hash = :ip_hash AND clicked_at > :minute_ago LIMIT :cap) recent
), recorded AS (
    INSERT INTO clicks (id, claim_id, task_id, group_id, brief_id, worker_id, clicked_at, ip_hash, user_agent_hash,
                        visitor_hash, visit_window)
    SELECT :click_id, claim_id, task_id, group_id, brief_id, worker_id, :clicked_at, :ip_hash, :user_agent_hash,
           :visitor_hash, :visit_window
    FROM target
    WHERE NOT EXISTS (SELECT 1 FROM earlier) AND NOT (SELECT over_cap FROM address)
    ON CONFLICT DO NOTHING
    RETURNING id, brief_id, group_id, worker_id
), counted AS (
    INSERT INTO clicks_hourly (brief_id, group_id, worker_id, hour, clicks)
    SELECT brief_id, group_id, worker_id, :clicked_hour, 1 FROM recorded
    ON CONFLICT (brief_id, group_id, worker_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + 1
)
SELECT t.landing_url, t.kind, t.brief_id, t.task_id, COALESCE(r.id, e.id) AS click_id
FROM target t LEFT JOIN recorded r ON true LEFT JOIN earlier e ON true
""")

_RESOLVE_CODE = sa.text("""
SELECT b.landing_url, g.kind, c.brief_id, c.task_id, c.id AS claim_id, c.group_id, c.worker_id
FROM claims c
JOIN briefs b ON b.id = c.brief_id
JOIN task_groups g ON g.id = c.group_id
WHERE c.tracked_code = :code
""")


@dataclass(frozen=True)
class Redirect:
    location: str
    click_id: str | None


def _digest(value: str | None) -> str | None:
    """HMAC-SHA256 keyed with SECRET_KEY: the same visitor hashes alike, and nobody can reverse it."""
    return keyed_digest(value) if value else None


def landing_url(base: str, *, kind: str, brief_id: str, task_id: str, click_id: str | None) -> str:
    """The brief's landing URL with our UTM parameters (they replace any of the same name), its
    other query parameters and fragment kept as they were."""
    parts = urlsplit(base)
    ours = {"utm_source": "marketplace", "utm_medium": kind, "utm_campaign": brief_id, "utm_content": task_id}
    if click_id:
        ours[CLICK_PARAM] = click_id
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    return urlunsplit(parts._replace(query=urlencode(kept + list(ours.items()))))


def follow(code: str, *, ip: str | None, user_agent: str | None, record: bool = True) -> Redirect:
    """Where a tracked link goes; with record=True the click is stored on the way (one write)."""
    if not code or len(code) > 32:
        raise NotFound("No such tracked link.")
    row, click_id = _resolve(code, ip, user_agent, record)
    if row is None:
        raise NotFound("No such tracked link.")
    return Redirect(landing_url(row["landing_url"], kind=row["kind"], brief_id=row["brief_id"],
                                task_id=row["task_id"], click_id=click_id), click_id)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a click is counted in (clicks_hourly.hour)."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


def _visit(ip: str | None, user_agent: str | None) -> dict:
    """The facts a click is stored and counted with: digests of the visitor, the window it falls in."""
    now = utcnow()
    window = current_app.config["CLICK_VISIT_WINDOW_SECONDS"]
    number = int(now.timestamp()) // window
    return {
        "click_id": new_id("clk"), "clicked_at": now, "clicked_hour": hour_of(now),
        "minute_ago": now - timedelta(minutes=1),
        "window_start": datetime.fromtimestamp(number * window, UTC),
        "window_end": datetime.fromtimestamp((number + 1) * window, UTC),
        "ip_hash": _digest(ip), "user_agent_hash": _digest(user_agent),
        # The separator cannot occur in an address, so no two (address, agent) pairs digest alike.
        "visitor_hash": _digest(f"{ip or ''}\n{user_agent or ''}"),
        "visit_window": number,
        "cap": current_app.config["CLICK_CAP_PER_ADDRESS_PER_MINUTE"],
    }


def _resolve(code: str, ip: str | None, user_agent: str | None, record: bool):
    """On the fast (synchronous_commit=off) direct pool: a click is one statement on the hottest path
    in the system, and a crash of the database server can lose only the last fraction of a second of
    clicks, never corrupt anything."""
    if not record:
        return next(iter(direct.read(_RESOLVE_CODE, {"code": code})), None), None
    visit = _visit(ip, user_agent)
    if db.engine.dialect.name == "postgresql":
        row = next(iter(direct.write(_RECORD_CLICK_PG, {"code": code, **visit}, durable=False, retry=True)), None)
        return row, (row["click_id"] if row else None)
    # The embedded SQLite default: no data-modifying CTEs, so resolve, look, then insert.
    row = next(iter(direct.read(_RESOLVE_CODE, {"code": code})), None)
    if row is None:
        return None, None
    clicks = Click.__table__
    earlier = next(iter(direct.read(sa.select(clicks.c.id).where(
        clicks.c.claim_id == row["claim_id"], clicks.c.visitor_hash == visit["visitor_hash"],
        clicks.c.visit_window == visit["visit_window"]))), None)
    if earlier is not None:
        return row, earlier["id"]
    recent = direct.read(sa.select(sa.func.count().label("n")).select_from(clicks).where(
        clicks.c.ip_hash == visit["ip_hash"], clicks.c.clicked_at > visit["minute_ago"]))[0]["n"]
    if recent >= visit["cap"]:
        return row, None
    # The click and its hour's count in one transaction, as on PostgreSQL (SQLite has one writer).
    hourly = ClickHourly.__table__
    with db.engine.begin() as conn:
        stored = conn.execute(sqlite.insert(clicks).values(
            id=visit["click_id"], claim_id=row["claim_id"], task_id=row["task_id"], group_id=row["group_id"],
            brief_id=row["brief_id"], worker_id=row["worker_id"], clicked_at=visit["clicked_at"],
            ip_hash=visit["ip_hash"], user_agent_hash=visit["user_agent_hash"], visitor_hash=visit["visitor_hash"],
            visit_window=visit["visit_window"]).on_conflict_do_nothing()).rowcount
        if not stored:  # a repeat that raced this one: the earlier click stands, nothing more to count
            earlier = conn.execute(sa.select(clicks.c.id).where(
                clicks.c.claim_id == row["claim_id"], clicks.c.visitor_hash == visit["visitor_hash"],
                clicks.c.visit_window == visit["visit_window"])).scalar()
            return row, earlier
        conn.execute(sqlite.insert(hourly).values(
            brief_id=row["brief_id"], group_id=row["group_id"], worker_id=row["worker_id"],
            hour=visit["clicked_hour"], clicks=1).on_conflict_do_update(
            index_elements=["brief_id", "group_id", "worker_id", "hour"], set_={"clicks": hourly.c.clicks + 1}))
    return row, visit["click_id"]


# --- conversions ------------------------------------------------------------------------------------

CREATED, DUPLICATE, NOT_FOUND, CONFLICT, INVALID = "created", "duplicate", "not_found", "conflict", "invalid"


@dataclass
class ConversionResult:
    index: int
    external_id: str
    outcome: str
    conversion: dict | None = None
    detail: str | None = None


@dataclass(frozen=True)
class _Attribution:
    claim_id: str
    click_id: str | None
    task_id: str
    group_id: str
    brief_id: str
    worker_id: str
    currency: str
    click_at: datetime | None = None  # with click_id, the key of the click (clicks are partitioned by time)


def _attributions(brand_id: str, items: list[dict]) -> tuple[dict[str, _Attribution], dict[str, _Attribution],
                                                             dict[str, _Attribution]]:
    """Codes, click ids and promo codes (normalised) of this brand's briefs, resolved in one query
    each (a kind no item uses costs none): another brand's code resolves to nothing."""
    codes = sorted({i["code"] for i in items if i.get("code")})
    click_ids = sorted({i["click_id"] for i in items if i.get("click_id")})
    promos = sorted({promo_codes.normalise(i["promo_code"]) for i in items if i.get("promo_code")})
    by_code: dict[str, _Attribution] = {}
    by_click: dict[str, _Attribution] = {}
    by_promo: dict[str, _Attribution] = {}
    if promos:
        rows = db.session.execute(
            sa.select(Claim.promo_code, Claim.id, Claim.task_id, Claim.group_id, Claim.brief_id, Claim.worker_id,
                      Brief.currency)
            .join(Brief, Brief.id == Claim.brief_id)
            .where(Claim.promo_code.in_(promos), Brief.brand_id == brand_id)
        )
        for promo, claim_id, task_id, group_id, brief_id, worker_id, currency in rows:
            by_promo[promo] = _Attribution(claim_id, None, task_id, group_id, brief_id, worker_id, currency)
    if codes:
        rows = db.session.execute(
            sa.select(Claim.tracked_code, Claim.id, Claim.task_id, Claim.group_id, Claim.brief_id, Claim.worker_id,
                      Brief.currency)
            .join(Brief, Brief.id == Claim.brief_id)
            .where(Claim.tracked_code.in_(codes), Brief.brand_id == brand_id)
        )
        for code, claim_id, task_id, group_id, brief_id, worker_id, currency in rows:
            by_code[code] = _Attribution(claim_id, None, task_id, group_id, brief_id, worker_id, currency)
    if click_ids:
        rows = db.session.execute(
            sa.select(Click.id, Click.claim_id, Click.task_id, Click.group_id, Click.brief_id, Click.worker_id,
                      Brief.currency, Click.clicked_at)
            .join(Brief, Brief.id == Click.brief_id)
            .where(Click.id.in_(click_ids), Brief.brand_id == brand_id)
        )
        for click_id, claim_id, task_id, group_id, brief_id, worker_id, currency, clicked_at in rows:
            by_click[click_id] = _Attribution(claim_id, click_id, task_id, group_id, brief_id, worker_id, currency,
                                              clicked_at)
    return by_code, by_click, by_promo


def _attribute(item: dict, by_code: dict, by_click: dict, by_promo: dict) -> tuple[str, _Attribution | None]:
    """(what the item is reported by, the claim it resolves to or None)."""
    if item.get("code"):
        return "code", by_code.get(item["code"])
    if item.get("promo_code"):
        return "promo_code", by_promo.get(promo_codes.normalise(item["promo_code"]))
    return "click_id", by_click.get(item.get("click_id"))


_NOT_FOUND_DETAIL = {
    "code": "No tracked link with this code on your briefs.",
    "click_id": "No tracked link with this click_id on your briefs.",
    "promo_code": "No promo code like this on your briefs.",
}


def present_conversion(row) -> dict:
    return {
        "id": row.id, "external_id": row.external_id, "brief_id": row.brief_id, "group_id": row.group_id,
        "task_id": row.task_id, "worker_id": row.worker_id, "click_id": row.click_id,
        "attributed_by": row.attributed_by, "value_cents": int(row.value_cents), "currency": row.currency,
        "occurred_at": rfc3339(row.occurred_at), "created_at": rfc3339(row.created_at),
    }


def _same(row, wanted: dict) -> bool:
    """Whether a stored conversion is what this request describes (so a replay, not a conflict)."""
    return (row.claim_id == wanted["claim_id"] and row.click_id == wanted["click_id"]
            and int(row.value_cents) == wanted["value_cents"] and row.currency == wanted["currency"]
            and as_utc(row.occurred_at) == as_utc(wanted["occurred_at"]))


def _insert_ignoring_duplicates(rows: list[dict]):
    table = Conversion.__table__
    return (upsert_insert(table).values(rows)
            .on_conflict_do_nothing(index_elements=["brand_id", "external_id"])
            .returning(table.c.external_id))


def record_conversions(brand_id: str, items: list[dict]) -> list[ConversionResult]:
    """Attribute conversions to their tracked links, idempotent by (brand, external_id).

    One query resolves the codes, one the click ids, one the promo codes, one INSERT … ON CONFLICT DO NOTHING
    RETURNING stores the new ones and one SELECT reads back the ones that existed: at most five
    statements for 1 or 1,000 conversions. An external_id already stored with the same
    attribution, value, currency and time is a replay (the stored conversion comes back); with
    anything different it is a conflict. Items that fail never stop the others.
    """
    by_code, by_click, by_promo = _attributions(brand_id, items)
    now = utcnow()
    results: list[ConversionResult] = []
    wanted: dict[str, dict] = {}  # external_id → the row its first item asks for
    repeats: list[tuple[ConversionResult, dict]] = []
    for index, item in enumerate(items):
        external_id = item["external_id"]
        result = ConversionResult(index, external_id, CREATED)
        results.append(result)
        attributed_by, target = _attribute(item, by_code, by_click, by_promo)
        if target is None:
            result.outcome, result.detail = NOT_FOUND, _NOT_FOUND_DETAIL[attributed_by]
            continue
        currency = item.get("currency") or target.currency
        if currency != target.currency:
            result.outcome = INVALID
            result.detail = f"currency: the brief is in {target.currency}; conversions are reported in it."
            continue
        row = {"id": new_id("conv"), "brand_id": brand_id, "external_id": external_id,
               "claim_id": target.claim_id, "click_id": target.click_id, "click_at": target.click_at,
               "task_id": target.task_id,
               "group_id": target.group_id, "brief_id": target.brief_id, "worker_id": target.worker_id,
               "attributed_by": attributed_by, "value_cents": item["value_cents"], "currency": currency,
               "occurred_at": item["occurred_at"], "created_at": now}
        if external_id in wanted:
            repeats.append((result, row))
        else:
            wanted[external_id] = row

    created: set[str] = set()
    if wanted:
        created = set(db.session.execute(_insert_ignoring_duplicates(list(wanted.values()))).scalars())
        # Performance bonuses the new conversions earn, in their transaction: stored and paid together.
        bonuses.earn_for_conversion_ids(sorted(wanted[external_id]["id"] for external_id in created))
    table = Conversion.__table__
    stored = {r.external_id: r for r in db.session.execute(
        sa.select(table).where(table.c.brand_id == brand_id, table.c.external_id.in_(list(wanted)))
    )} if wanted else {}
    db.session.commit()

    first_outcome: dict[str, str] = {}
    for result in results:
        row = wanted.get(result.external_id)
        if result.outcome != CREATED or row is None or result.external_id in first_outcome:
            continue
        existing = stored.get(result.external_id)
        if result.external_id in created:
            result.conversion = present_conversion(existing)
        elif existing is not None and _same(existing, row):
            result.outcome, result.conversion = DUPLICATE, present_conversion(existing)
        else:
            result.outcome = CONFLICT
            result.detail = "This external_id was reported before with a different conversion."
        first_outcome[result.external_id] = result.outcome
    for result, row in repeats:
        existing = stored.get(result.external_id)
        if first_outcome.get(result.external_id) in (CREATED, DUPLICATE) and _same(existing, row):
            result.outcome, result.conversion = DUPLICATE, present_conversion(existing)
        else:
            result.outcome = CONFLICT
            result.detail = "This external_id appears earlier in the request with a different conversion."

    return results


def briefs_converted(results: list) -> list[str]:
    """The briefs that new conversions among these results count for (the stop rule judges them again)."""
    return sorted({r.conversion["brief_id"] for r in results if r.outcome == CREATED and r.conversion})


def record_conversion(brand_id: str, item: dict) -> tuple[dict, bool]:
    """One conversion: (it, True) when stored now, (the first one, False) on a replay; else 404/409/422."""
    result = record_conversions(brand_id, [item])[0]
    if result.outcome == NOT_FOUND:
        raise NotFound(result.detail)
    if result.outcome == CONFLICT:
        raise Conflict(result.detail, errors={"external_id": [result.detail]})
    if result.outcome == INVALID:
        field_name, _, message = result.detail.partition(": ")
        raise InvalidInput.field(field_name, message)
    return result.conversion, result.outcome == CREATED


# --- the stop rule ----------------------------------------------------------------------------------


def stop_rule_candidates() -> list[str]:
    """Briefs the stop rule may act on: running, with a target CPA."""
    return list(db.session.scalars(
        sa.select(Brief.id).where(Brief.status.in_(["live", "paused"]), Brief.target_cpa_cents.is_not(None))
        .order_by(Brief.id)
    ))


def apply_stop_rule(brief_ids: list[str]) -> list[str]:
    """Pause every group of these briefs whose CPA exceeds 3× the brief's target after the minimum
    spend; returns the ids of the groups it paused now. Safe to run twice: a paused group is skipped."""
    if not brief_ids:
        return []
    min_spend = current_app.config["STOP_RULE_MIN_SPEND_CENTS"]
    briefs = {b.id: b for b in db.session.scalars(
        sa.select(Brief).where(Brief.id.in_(brief_ids), Brief.target_cpa_cents.is_not(None)))}
    if not briefs:
        return []
    groups = db.session.execute(
        sa.select(TaskGroup.id, TaskGroup.brief_id)
        .where(TaskGroup.brief_id.in_(list(briefs)), TaskGroup.paused_reason.is_(None))
    ).all()
    reports.analytic_transaction()
    by_group = reports.figures("group", list(briefs))
    reasons = []
    for group_id, brief_id in groups:
        brief, figures = briefs[brief_id], by_group.get(group_id)
        if figures is None or not reports.breaches_stop_rule(brief, figures, min_spend):
            continue
        cpa = reports.cents_ratio(figures.spend_cents, figures.conversions)
        reasons.append({
            "gid": group_id,
            "reason": (f"Stop rule: CPA {cpa + ' cents' if cpa else 'unbounded (no conversions)'} exceeds "
                       f"{reports.STOP_RULE_MULTIPLE}x the target of {brief.target_cpa_cents} cents after "
                       f"{figures.spend_cents} cents spent ({figures.conversions} conversions)."),
        })
    if not reasons:
        db.session.rollback()
        return []
    paused = [reason["gid"] for reason in reasons if briefs_service.pause_group(reason["gid"], reason["reason"])]
    db.session.commit()
    if paused:
        log.info("stop rule paused groups %s", ", ".join(paused))
    return paused
