"""Review decisions on submissions, in bulk, and auto-approval."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from marketplace.auth.models import Worker
from marketplace.auth.service import Principal
from marketplace.bonuses import service as bonuses
from marketplace.briefs.models import Brief, TaskGroup, fee_for
from marketplace.db.arrays import among
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict, InvalidInput, NotFound
from marketplace.extensions import db
from marketplace.http.pagination import decode_cursor, encode_cursor
from marketplace.ledger import service as ledger
from marketplace.proofs import lifecycle as proofs
from marketplace.proofs.checks import CHECK_NAMES, OUTCOMES
from marketplace.proofs.models import REASON_CODES, Submission, SubmissionCheck
from marketplace.proofs.service import disclosing, shown_auto_approve_at, waits_for
from marketplace.tasks import lifecycle as tasks
from marketplace.tasks.models import HOLDING, Claim, Task

DECISIONS = ("approve", "reject", "request_revision")
MAX_PER_CALL = 10_000
# One transaction per chunk: long enough to amortise the statements, short enough that row
# locks on a chunk of submissions and one escrow are held for well under a second.
CHUNK = 2_500
DEFAULT_REVISION_HOURS = 48
AUTO_APPROVER = "system:auto-approval"
INSUFFICIENT_ESCROW = "insufficient escrow"

# Only needs_review submissions can be decided; why each other status cannot.
NOT_DECIDABLE = {
    "validating": "still validating",
    "auto_rejected": "auto-rejected: a check failed and its task was reopened",
    "approved": "already approved",
    "paid": "already approved and paid",
    "rejected": "already rejected",
    "revision_requested": "revision requested: waiting for the worker's new submission",
}

_CHECK_TERM = re.compile(rf"^(?:({'|'.join(CHECK_NAMES)}):)?({'|'.join(OUTCOMES)})$")

CHECK_SYNTAX = (
    "`check=` filters by check outcome: a comma-separated list of terms, all of which must hold. "
    "A term is `OUTCOME` (some check has that outcome, e.g. `check=fail`) or `NAME:OUTCOME` (the "
    "named check has that outcome, e.g. `check=text:warn` or `check=screenshot:fail,link:pass`). "
    f"Outcomes are {', '.join(OUTCOMES)}; check names are {', '.join(CHECK_NAMES)}. "
    "`all_checks=pass` keeps only submissions with at least one check and every check passed."
)


@dataclass(frozen=True)
class CheckTerm:
    name: str | None
    outcome: str


@dataclass(frozen=True)
class ReviewFilter:
    brief_id: str | None = None
    status: str | None = None
    checks: tuple[CheckTerm, ...] = ()
    all_checks_pass: bool = False


@dataclass
class DecisionOutcome:
    approved: int = 0
    rejected: int = 0
    revision_requested: int = 0
    skipped: list[dict] = field(default_factory=list)
    remaining: int = 0

    def add(self, other: DecisionOutcome) -> None:
        self.approved += other.approved
        self.rejected += other.rejected
        self.revision_requested += other.revision_requested
        self.skipped.extend(other.skipped)

    def as_dict(self) -> dict:
        return {"approved": self.approved, "rejected": self.rejected,
                "revision_requested": self.revision_requested, "skipped": self.skipped,
                "remaining": self.remaining}


def parse_check_filter(text: str | None, field_name: str = "check") -> tuple[CheckTerm, ...]:
    """`fail` / `text:warn,link:pass` → terms; anything else is a 422 naming the field."""
    if not text:
        return ()
    terms = []
    for raw in text.split(","):
        match = _CHECK_TERM.match(raw.strip().lower())
        if match is None:
            raise InvalidInput.field(field_name, f"{raw.strip()!r} is not OUTCOME or NAME:OUTCOME "
                                                 f"(outcomes: {', '.join(OUTCOMES)}; "
                                                 f"names: {', '.join(CHECK_NAMES)}).")
        terms.append(CheckTerm(match.group(1), match.group(2)))
    if len(terms) > 10:
        raise InvalidInput.field(field_name, "At most 10 terms.")
    return tuple(terms)



def _all_checks_pass() -> sa.ColumnElement[bool]:
    """At least one check ran and none failed or warned: nothing checked is not 'all passed'."""
    checks = SubmissionCheck
    return sa.and_(
        sa.exists().where(checks.submission_id == Submission.id),
        ~sa.exists().where(checks.submission_id == Submission.id, checks.outcome != "pass"),
    )


def _filtered(query: sa.Select, review_filter: ReviewFilter) -> sa.Select:
    if review_filter.brief_id:
        query = query.where(Submission.brief_id == review_filter.brief_id)
    if review_filter.status:
        query = query.where(Submission.status == review_filter.status)
    for term in review_filter.checks:
        condition = sa.and_(SubmissionCheck.submission_id == Submission.id, SubmissionCheck.outcome == term.outcome)
        if term.name:
            condition = sa.and_(condition, SubmissionCheck.name == term.name)
        query = query.where(sa.exists().where(condition))
    if review_filter.all_checks_pass:
        query = query.where(_all_checks_pass())
    return query


def _visible(query: sa.Select, principal: Principal) -> sa.Select:
    """Admins see every submission; a brand only those on its own briefs."""
    if principal.is_admin:
        return query
    return query.where(Submission.brief_id.in_(sa.select(Brief.id).where(Brief.brand_id == principal.id)))


def _require_visible_brief(principal: Principal, brief_id: str | None) -> None:
    if not brief_id:
        return
    query = sa.select(Brief.id).where(Brief.id == brief_id)
    if not principal.is_admin:
        query = query.where(Brief.brand_id == principal.id)
    if db.session.scalar(query) is None:
        raise NotFound(f"No brief {brief_id}.")


# The queue ----------------------------------------------------------------------------------


def list_queue(principal: Principal, review_filter: ReviewFilter, *, limit: int,
               cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of the review queue, newest first, each item with its checks (two queries)."""
    _require_visible_brief(principal, review_filter.brief_id)
    query = (
        sa.select(Submission, Worker.display_name, TaskGroup.kind, TaskGroup.name,
                  TaskGroup.unit_price_cents, Brief.currency)
        .join(Worker, Worker.id == Submission.worker_id)
        .join(TaskGroup, TaskGroup.id == Submission.group_id)
        .join(Brief, Brief.id == Submission.brief_id)
    )
    query = _filtered(_visible(query, principal), review_filter)
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(Submission.created_at, Submission.id)
                            < sa.tuple_(sa.literal(created_at), sa.literal(row_id)))
    rows = db.session.execute(
        query.order_by(Submission.created_at.desc(), Submission.id.desc()).limit(limit + 1)
    ).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][0].created_at, rows[-1][0].id)

    checks: dict[str, list[dict]] = defaultdict(list)
    if rows:
        for check in db.session.scalars(
            sa.select(SubmissionCheck)
            .where(SubmissionCheck.submission_id.in_([r[0].id for r in rows]))
            .order_by(SubmissionCheck.submission_id, SubmissionCheck.name)
        ):
            checks[check.submission_id].append({"name": check.name, "outcome": check.outcome, "detail": check.detail})
    # A brand reviewing its brief sees the ids its own submissions matched, not other brands'.
    disclose = disclosing(principal, [c["detail"] for found in checks.values() for c in found]
                          + [r.get("detail") for sub, *_ in rows for r in (sub.rejection_reasons or [])])
    for found in checks.values():
        for check in found:
            check["detail"] = disclose(check["detail"])

    items = []
    for sub, display_name, kind, group_name, unit_price, currency in rows:
        waiting = waits_for(sub.status, [c["outcome"] for c in checks.get(sub.id, [])])
        items.append({
            "id": sub.id, "status": sub.status, "brief_id": sub.brief_id, "task_id": sub.task_id,
            "claim_id": sub.claim_id,
            "group": {"id": sub.group_id, "kind": kind, "name": group_name},
            "worker": {"id": sub.worker_id, "display_name": display_name},
            "unit_price_cents": unit_price, "currency": currency,
            "text": sub.text, "link": sub.link, "captured_at": sub.captured_at,
            "screenshot_url": f"/v1/submissions/{sub.id}/screenshot" if sub.screenshot_key else None,
            "checks": checks.get(sub.id, []),
            "rejection_reasons": [{**r, "detail": disclose(r.get("detail"))} for r in sub.rejection_reasons]
            if sub.rejection_reasons is not None else None,
            "submitted_at": sub.submitted_at, "validated_at": sub.validated_at,
            "auto_approve_at": shown_auto_approve_at(sub, waiting), "waits_for": waiting,
            "decided_at": sub.decided_at, "decided_by": sub.decided_by,
            "reason_code": sub.reason_code, "reason": sub.reason,
            "revision_deadline": sub.revision_deadline, "created_at": sub.created_at,
        })
    return items, next_cursor


# Decisions ----------------------------------------------------------------------------------


def decide(principal: Principal, decision: str, *, submission_ids: Sequence[str] | None = None,
           review_filter: ReviewFilter | None = None, reason_code: str | None = None,
           reason: str | None = None, revision_deadline_hours: int = DEFAULT_REVISION_HOURS) -> DecisionOutcome:
    """Decide on up to 10,000 submissions, named by id or by a filter, one transaction per chunk.

    A brand decides only on its own briefs: other ids are skipped as "not found", as are ids
    that do not exist. A filter selects needs_review submissions only, oldest first (the
    order approvals are paid in), and `remaining` says how many more matched it.
    """
    if decision not in DECISIONS:
        raise InvalidInput.field("decision", f"Must be one of: {', '.join(DECISIONS)}.")
    if decision != "approve" and reason_code is None:
        raise InvalidInput.field("reason_code", "A reason code is required to reject or ask for a revision.")
    if reason_code is not None and reason_code not in REASON_CODES:
        raise InvalidInput.field("reason_code", f"Must be one of: {', '.join(REASON_CODES)}.")
    if (submission_ids is None) == (review_filter is None):
        raise InvalidInput("Give either submission_ids or filter, not both.",
                           errors={"submission_ids": ["Give either submission_ids or filter."]})

    remaining = 0
    if submission_ids is not None:
        ids = list(dict.fromkeys(submission_ids))
        if len(ids) > MAX_PER_CALL:
            raise InvalidInput.field("submission_ids", f"At most {MAX_PER_CALL} ids a call.")
    else:
        _require_visible_brief(principal, review_filter.brief_id)
        ids, remaining = _matching_ids(principal, review_filter)

    actor = f"{principal.role}:{principal.id}"
    brand_id = None if principal.is_admin else principal.id
    outcome = DecisionOutcome(remaining=remaining)
    for start in range(0, len(ids), CHUNK):
        outcome.add(_decide_chunk(
            ids[start:start + CHUNK], decision, actor=actor, brand_id=brand_id, reason_code=reason_code,
            reason=reason, revision_deadline=timedelta(hours=revision_deadline_hours)))
    return outcome


def _matching_ids(principal: Principal, review_filter: ReviewFilter) -> tuple[list[str], int]:
    """The first 10,000 decidable submissions the filter matches (oldest first) and how many more."""
    query = sa.select(Submission.id, sa.func.count().over()).where(Submission.status == "needs_review")
    query = _filtered(_visible(query, principal), review_filter)
    rows = db.session.execute(
        query.order_by(Submission.created_at, Submission.id).limit(MAX_PER_CALL)
    ).all()
    db.session.commit()  # the read transaction must not outlive this step: each chunk locks afresh
    total = rows[0][1] if rows else 0
    return [r[0] for r in rows], max(0, total - len(rows))


def _decide_chunk(ids: Sequence[str], decision: str, *, actor: str, brand_id: str | None,
                  reason_code: str | None, reason: str | None, revision_deadline: timedelta,
                  require_all_checks_pass: bool = False) -> DecisionOutcome:
    """One transaction: lock the chunk's submissions, decide the decidable ones, commit.

    The row locks are what make a decision happen once: a second decider (a person's bulk
    call, the auto-approval job) waits here, then reads the status the first one committed
    and skips. Rows are locked in id order so that overlapping chunks never deadlock; the
    escrows are locked after, in code order, by the ledger.
    """
    now = utcnow()
    outcome = DecisionOutcome()
    query = (
        sa.select(Submission.id, Submission.status, Submission.brief_id, Submission.worker_id,
                  Submission.task_id, Submission.claim_id, Submission.created_at,
                  TaskGroup.unit_price_cents, Brief.fee_bps, Brief.currency,
                  (_all_checks_pass() if require_all_checks_pass else sa.true()).label("checks_pass"))
        .join(TaskGroup, TaskGroup.id == Submission.group_id)
        .join(Brief, Brief.id == Submission.brief_id)
        .where(among(Submission.id, ids))
        .order_by(Submission.id)
        .with_for_update(of=Submission)
    )
    if brand_id is not None:
        query = query.where(Brief.brand_id == brand_id)
    # On the session's connection, not through the ORM: plain rows, no identity map, a chunk at a time.
    found = {row.id: row for row in db.session.connection().execute(query)}

    decidable = []
    for sub_id in ids:
        row = found.get(sub_id)
        if row is None:
            outcome.skipped.append({"id": sub_id, "reason": "not found"})
        elif row.status != "needs_review":
            outcome.skipped.append({"id": sub_id, "reason": NOT_DECIDABLE.get(row.status, row.status)})
        elif not row.checks_pass:
            outcome.skipped.append({"id": sub_id, "reason": "not every check passed"})
        else:
            decidable.append(row)

    if decision == "approve":
        decidable = _approve(decidable, outcome)
    if decidable:
        proofs.decide(decidable, decision, now=now, actor=actor, reason_code=reason_code,
                      reason=reason, revision_deadline=revision_deadline)  # and its audit rows
        if decision == "approve":
            # Conversions that came in while the work waited for review earn its bonus now.
            bonuses.earn_on_approval([r.id for r in decidable])
            outcome.approved = len(decidable)
        elif decision == "reject":
            outcome.rejected = len(decidable)
        else:
            outcome.revision_requested = len(decidable)
    db.session.commit()
    return outcome


def _approve(rows: list, outcome: DecisionOutcome, keep: dict[str, int] | None = None) -> list:
    """Book the approvals the escrows cover (oldest first per brief), skip the rest; returns the booked rows.

    `keep` (brief id → cents) is what an escrow must keep beyond these approvals: an overturn
    whose task someone else holds is paid only from what the brief has not promised."""
    if not rows:
        return []
    escrows = {brief_id: ledger.escrow(brief_id, currency) for brief_id, currency in {(r.brief_id, r.currency) for r in rows}}
    held = ledger.locked_balances(escrows.values())
    keep = keep or {}
    by_brief: dict[str, list] = defaultdict(list)
    for row in rows:
        by_brief[row.brief_id].append(row)

    # Ten thousand rows a call: each price's fee, each worker's and each currency's account is made once.
    fees = {(price, bps): fee_for(price, bps) for price, bps in {(r.unit_price_cents, r.fee_bps) for r in rows}}
    covered = []
    for brief_id, brief_rows in by_brief.items():
        left = held[escrows[brief_id].code] - keep.get(brief_id, 0)
        for row in sorted(brief_rows, key=lambda r: (r.created_at, r.id)):
            cost = row.unit_price_cents + fees[row.unit_price_cents, row.fee_bps]
            if cost <= left:
                left -= cost
                covered.append(row)
            else:
                outcome.skipped.append({"id": row.id, "reason": INSUFFICIENT_ESCROW})
    if not covered:
        return []

    postings = []
    workers: dict[tuple[str, str], ledger.Account] = {}  # a worker approved many times: one Account
    platform = {currency: ledger.platform_fees(currency) for currency in {r.currency for r in covered}}
    for row in covered:
        price, currency, worker_id = row.unit_price_cents, row.currency, row.worker_id
        fee = fees[price, row.fee_bps]
        worker = workers.get((worker_id, currency))
        if worker is None:
            worker = workers[worker_id, currency] = ledger.worker_available(worker_id, currency)
        lines = ((escrows[row.brief_id], price + fee), (worker, -price), (platform[currency], -fee)) if fee else \
            ((escrows[row.brief_id], price), (worker, -price))
        postings.append(ledger.Posting("approval", row.id, lines, memo=f"approved {row.task_id}"))
    ledger.post_many(postings, locked=held)  # the escrows are locked and read above
    return covered


# Overturned rejections ----------------------------------------------------------------------


def approve_overturned(submission_id: str, *, actor: str, promised_cents) -> None:
    """Approve a rejected or auto-rejected submission whose appeal was won, in the caller's
    transaction (the caller has locked the brief, so its groups and promises hold still).

    The same booking as every approval (_approve: escrow to the worker and the platform's fee,
    once per submission by the ledger's unique entry). The task comes back to the worker when
    it is open again, and its money is the one the escrow kept for it; when someone else holds
    it, the approval is paid only from what the escrow holds beyond `promised_cents()` (what
    the brief still promises), else Conflict, and nothing changes.
    """
    now = utcnow()
    row = db.session.connection().execute(
        sa.select(Submission.id, Submission.status, Submission.brief_id, Submission.worker_id,
                  Submission.task_id, Submission.claim_id, Submission.created_at,
                  TaskGroup.unit_price_cents, Brief.fee_bps, Brief.currency)
        .join(TaskGroup, TaskGroup.id == Submission.group_id)
        .join(Brief, Brief.id == Submission.brief_id)
        .where(Submission.id == submission_id)
        .with_for_update(of=Submission)
    ).one()
    if row.status not in proofs.SUBMISSION_MOVES["overturn"].sources:
        raise Conflict(f"Submission {row.id} is {row.status}, not rejected: there is nothing to overturn.")
    task_status = db.session.scalar(sa.select(Task.status).where(Task.id == row.task_id).with_for_update())
    taken_back = task_status == "open"
    # An open task is promised (its money is in the escrow, kept for whoever takes it): taking
    # it back spends that money. Otherwise the overturn must not eat into anyone else's task.
    keep = {} if taken_back else {row.brief_id: promised_cents()}
    outcome = DecisionOutcome()
    if not _approve([row], outcome, keep):
        raise Conflict(f"The brief's escrow cannot cover this approval: its task is "
                       f"{task_status} and nothing is left beyond what the brief has promised. "
                       "The appeal stays open.")
    if taken_back:
        tasks.take_back(row.task_id, row.worker_id, now)
    proofs.overturn(row.id, now=now, actor=actor)
    # As on every approval: the conversions that came in while the work stood rejected earn now.
    bonuses.earn_on_approval([row.id])


# Auto-approval and lapsed revisions ------------------------------------------------------------


def auto_approve_due(now: datetime | None = None, *, chunk: int = CHUNK) -> dict:
    """Approve needs_review submissions whose every check passed once their auto_approve_at is due.

    A check that warned waits for a person. Goes through the same chunked decision as a
    person's bulk approval (so the same locks make each approval happen once), walking the
    due submissions in (auto_approve_at, id) order so that ones skipped (escrow short) are
    not picked up again in this run.
    """
    now = now or utcnow()
    total = DecisionOutcome()
    after: tuple[datetime, str] | None = None
    while True:
        query = (
            sa.select(Submission.auto_approve_at, Submission.id)
            .where(Submission.status == "needs_review", Submission.auto_approve_at <= now, _all_checks_pass())
            .order_by(Submission.auto_approve_at, Submission.id)
            .limit(chunk)
        )
        if after is not None:
            query = query.where(sa.tuple_(Submission.auto_approve_at, Submission.id)
                                > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        rows = db.session.execute(query).all()
        db.session.commit()
        if not rows:
            break
        total.add(_decide_chunk(
            [r.id for r in rows], "approve", actor=AUTO_APPROVER, brand_id=None, reason_code=None,
            reason=None, revision_deadline=timedelta(0), require_all_checks_pass=True))
        after = (rows[-1].auto_approve_at, rows[-1].id)
        if len(rows) < chunk:
            break
    skipped: dict[str, int] = defaultdict(int)
    for item in total.skipped:
        skipped[item["reason"]] += 1
    return {"approved": total.approved, "skipped": dict(skipped)}


def close_lapsed_revisions(now: datetime | None = None) -> int:
    """End the claims whose revision deadline passed with no new submission; their tasks reopen.

    A revised proof is submitted under a lock on its claim, and submitting does not change the
    claim row, so one statement could not see a revision that commits while it runs: it would
    end the claim and reopen a task whose new proof is on its way (then two workers' proofs for
    one task, both payable). So the lapsed claims are locked first, skipping any being submitted
    on right now, and checked again by a second statement, whose snapshot sees every revision
    that committed before those locks were taken.
    """
    now = now or utcnow()
    later = aliased(Submission)
    lapsed = (
        sa.select(Submission.claim_id)
        .where(Submission.status == "revision_requested", Submission.revision_deadline <= now,
               ~sa.exists().where(later.claim_id == Submission.claim_id, later.created_at > Submission.created_at))
    )
    locked = db.session.scalars(
        sa.select(Claim.id).where(Claim.id.in_(lapsed), Claim.status.in_(HOLDING))
        .order_by(Claim.id).with_for_update(skip_locked=True)
    ).all()
    ended = tasks.expire(lapsed.where(Submission.claim_id.in_(locked))) if locked else 0
    db.session.commit()
    return ended
