"""The content bank: every approved asset of a brief with its tracked link and performance, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from marketplace.auth.models import Worker
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.briefs.rights import approved_between_for_expiring, rights_expire_at
from marketplace.db.clock import rfc3339, utcnow
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.proofs.models import Submission
from marketplace.proofs.service import shared_screenshot_url
from marketplace.tasks.models import Claim
from marketplace.tracking.models import Click, Conversion
from marketplace.tracking.reports import APPROVED

CSV_COLUMNS = (
    "submission_id", "status", "approved_at", "brief_id", "group_id", "group_kind", "group_name", "task_id",
    "worker_id", "worker_name", "text", "link", "screenshot_url", "tracked_code", "tracked_link", "promo_code", "clicks",
    "conversions",
    "revenue_cents", "currency",
    "usage_channels", "usage_term_days", "usage_territories", "usage_exclusive", "rights_expire_at",
)
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…), +cmd|…, @SUM…);
# tab and carriage return can hide such a start from a naive check.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_CHUNK = 500


def _approved(brief: Brief, rights: str | None = None) -> sa.Select:
    """The brief's approved assets; rights="expiring": those whose usage rights end within 30 days."""
    query = sa.select(Submission).where(Submission.brief_id == brief.id, Submission.status.in_(APPROVED))
    if rights == "expiring":
        window = approved_between_for_expiring(brief.usage_rights, utcnow())
        if window is None:  # no rights stated: nothing expires
            return query.where(sa.false())
        query = query.where(Submission.decided_at > window[0], Submission.decided_at <= window[1])
    return query


def present(brief: Brief, submissions: Sequence[Submission], base_url: str, *, shared: bool = False) -> list[dict]:
    """Assets for these submissions with their performance, in three queries however many there are.
    shared=True (the CSV) writes screenshot links that open without credentials for a while."""
    if not submissions:
        return []
    claim_ids = [s.claim_id for s in submissions]
    details = {
        row.id: row for row in db.session.execute(
            sa.select(Submission.id, Claim.tracked_code, Claim.promo_code, TaskGroup.kind, TaskGroup.name, Worker.display_name)
            .join(Claim, Claim.id == Submission.claim_id)
            .join(TaskGroup, TaskGroup.id == Submission.group_id)
            .join(Worker, Worker.id == Submission.worker_id)
            .where(Submission.id.in_([s.id for s in submissions]))
        )
    }
    clicks = dict(db.session.execute(
        sa.select(Click.claim_id, sa.func.count()).where(Click.claim_id.in_(claim_ids)).group_by(Click.claim_id)
    ).all())
    conversions = {
        claim_id: (int(n), int(revenue)) for claim_id, n, revenue in db.session.execute(
            sa.select(Conversion.claim_id, sa.func.count(), sa.func.sum(Conversion.value_cents))
            .where(Conversion.claim_id.in_(claim_ids)).group_by(Conversion.claim_id)
        )
    }
    base_url = base_url.rstrip("/")
    out = []
    for s in submissions:
        d = details[s.id]
        n_conversions, revenue = conversions.get(s.claim_id, (0, 0))
        out.append({
            "submission_id": s.id, "status": s.status, "approved_at": rfc3339(s.decided_at),
            "brief_id": s.brief_id, "group_id": s.group_id, "group_kind": d.kind, "group_name": d.name,
            "task_id": s.task_id, "worker_id": s.worker_id, "worker_name": d.display_name,
            "text": s.text, "link": s.link,
            "screenshot_url": (None if not s.screenshot_key else shared_screenshot_url(base_url, s.id) if shared
                               else f"{base_url}/v1/submissions/{s.id}/screenshot"),
            "tracked_code": d.tracked_code, "tracked_link": f"{base_url}/t/{d.tracked_code}",
            "promo_code": d.promo_code,
            "clicks": int(clicks.get(s.claim_id, 0)), "conversions": n_conversions, "revenue_cents": revenue,
            "currency": brief.currency,
            "usage_rights": brief.usage_rights,
            "rights_expire_at": rfc3339(rights_expire_at(s.decided_at, brief.usage_rights)),
        })
    return out


def list_assets(brief: Brief, base_url: str, *, limit: int, cursor: str | None,
                rights: str | None = None) -> tuple[list[dict], str | None]:
    """One page of the content bank, newest approved work first."""
    rows, next_cursor = page(_approved(brief, rights), Submission, limit=limit, cursor=cursor)
    return present(brief, rows, base_url), next_cursor


def guard_cell(value):
    """Defuse spreadsheet formulas: a text cell starting with = + - @ (or tab/CR) gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def _csv_cells(asset: dict) -> dict:
    """The asset as CSV cells: its usage rights flattened into columns of their own, lists ';'-joined."""
    rights = asset["usage_rights"] or {}
    return {**asset, "usage_channels": ";".join(rights.get("channels", [])),
            "usage_term_days": rights.get("term_days"),
            "usage_territories": ";".join(rights.get("territories", [])),
            "usage_exclusive": None if not rights else str(rights["exclusive"]).lower()}


def csv_rows(brief: Brief, base_url: str, rights: str | None = None) -> Iterator[str]:
    """The whole content bank as CSV text, a chunk at a time (RFC 4180: CRLF, quoted as needed).

    Reads keyset pages of CSV_CHUNK rows, so memory stays flat however many assets there are.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    cursor = None
    while True:
        rows, cursor = page(_approved(brief, rights), Submission, limit=CSV_CHUNK, cursor=cursor)
        for asset in present(brief, rows, base_url, shared=True):
            cells = _csv_cells(asset)
            writer.writerow([guard_cell(cells[column]) for column in CSV_COLUMNS])
        yield flush()
        if cursor is None:
            return
