"""Taking proof in: who may submit what and when, storing it, and who may read it back.

The request side does no image decoding and no network work: it checks the claim and the
group's proof rules, stores the file under a random key, records the submission as
`validating`; its route then enqueues one validation job (workers.validation). Everything else happens in
`marketplace.proofs.validation`, run by `workers.validation`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.exceptions import RequestEntityTooLarge

from marketplace.auth.service import Principal
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.db.clock import as_utc, utcnow
from marketplace.errors import Conflict, DomainError, InvalidInput, NotFound, ServiceUnavailable
from marketplace.extensions import db
from marketplace.http.pagination import page
from marketplace.http.ratelimit import check_submission
from marketplace.keyed import keyed_digest
from marketplace.proofs import lifecycle
from marketplace.proofs.models import ANOTHER_SUBMISSION, SUBMISSION_ID, Submission, SubmissionCheck
from marketplace.proofs.storage import CHUNK, StorageKeyError, StorageUnavailable, storage
from marketplace.tasks import lifecycle as tasks
from marketplace.tasks.models import Claim, Task
from marketplace.workforce import sightings, suspensions

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Upload:
    """A screenshot as received: its bytes (read under the size limit) and nothing the client named."""

    data: bytes


# --- submitting -------------------------------------------------------------------------------


def _held_claim(worker_id: str, task_id: str) -> Claim:
    """The worker's latest claim on the task, locked; 404 when the task is not theirs."""
    held = db.session.scalar(
        sa.select(Claim).where(Claim.task_id == task_id, Claim.worker_id == worker_id)
        .order_by(Claim.claimed_at.desc(), Claim.id.desc()).limit(1).with_for_update()
    )
    if held is not None:
        return held
    task_status = db.session.scalar(sa.select(Task.status).where(Task.id == task_id))
    if task_status == "open":
        raise Conflict("You have not claimed this task; claim it before submitting proof.")
    raise NotFound(f"You hold no claim on task {task_id}.")


def _may_submit_on(held: Claim, now: datetime) -> None:
    """Conflict unless the claim is active and unexpired, or its proof came back for revision."""
    if held.status == "active":
        if as_utc(held.expires_at) <= now:
            raise Conflict("Your claim on this task has expired; claim a task again.")
        return
    if held.status == "submitted":
        latest = db.session.scalar(
            sa.select(Submission).where(Submission.claim_id == held.id)
            .order_by(Submission.created_at.desc(), Submission.id.desc()).limit(1)
        )
        if latest is not None and latest.status == "revision_requested":
            if latest.revision_deadline is not None and as_utc(latest.revision_deadline) <= now:
                raise Conflict("The deadline for the requested revision has passed.")
            return
        raise Conflict("Proof is already submitted for this task.")
    raise Conflict(f"Your claim on this task is {held.status}; claim a task again.")


def _required_parts(rules: dict, proof: dict, upload: Upload | None) -> None:
    """422 with every field's problem when the proof misses what the group asks for, or adds to it."""
    errors: dict[str, list[str]] = {}
    screenshot_rule = (rules or {}).get("screenshot") or "none"
    if upload is None and screenshot_rule == "required":
        errors["screenshot"] = ["A screenshot is required for this task (send it as a multipart file)."]
    elif upload is not None and screenshot_rule == "none":
        errors["screenshot"] = ["This task does not take a screenshot."]
    elif upload is not None and not upload.data:
        errors["screenshot"] = ["The file is empty."]
    for part in ("link", "text"):
        rule = (rules or {}).get(part)
        given = bool((proof.get(part) or "").strip())
        if rule is None and given:
            errors[part] = [f"This task does not take a {part}."]
        elif rule is not None and rule.get("required", True) and not given:
            errors[part] = [f"A {part} is required for this task."]
    if errors:
        name, messages = next(iter(errors.items()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{name}: {messages[0]}{more}", errors=errors)


def submit(worker_id: str, task_id: str, proof: dict, upload: Upload | None,
           received_at: datetime | None = None,
           seen_from: tuple[str | None, str | None] | None = None) -> Submission:
    """Record proof for the worker's claimed task as `validating` (the caller enqueues its validation).

    ``proof`` holds link/text/captured_at as parsed by SubmissionIn. The claim row is locked
    for the whole transaction, so a concurrent second submission or the claim-expiry job
    waits and then sees the claim as submitted. ``received_at`` is when the request began:
    proof whose upload began before the claim expired is on time, however slow the phone's
    connection (the expiry job leaves a claim alone for UPLOAD_GRACE past its expiry).
    """
    suspensions.refuse_if_suspended(worker_id)
    check_submission(worker_id)  # SUBMISSION_RATE_LIMIT per worker: 429 with Retry-After
    if upload is not None and len(upload.data) > current_app.config["MAX_UPLOAD_BYTES"]:
        raise RequestEntityTooLarge()
    now = utcnow()
    held = _held_claim(worker_id, task_id)
    _may_submit_on(held, min(received_at or now, now))
    group = db.session.get(TaskGroup, held.group_id)
    brief = db.session.get(Brief, held.brief_id)
    _required_parts(group.proof, proof, upload)

    submission = lifecycle.start_validating(
        task_id=task_id, claim_id=held.id, group_id=group.id, brief_id=brief.id, worker_id=worker_id,
        text=(proof.get("text") or None), link=((proof.get("link") or "").strip() or None),
        captured_at=proof.get("captured_at"),
        submitted_at=now, created_at=now,
        auto_approve_at=now + timedelta(hours=brief.auto_approve_after_hours),
        validation_attempts=0,
    )
    if upload is not None:
        try:
            submission.screenshot_key = storage().put(upload.data)
        except StorageUnavailable as exc:  # nothing stored: nothing recorded either
            db.session.rollback()
            raise ServiceUnavailable(f"Proof files cannot be stored right now ({exc}); try again shortly.") from None
        submission.screenshot_bytes = len(upload.data)
        submission.screenshot_sha256 = hashlib.sha256(upload.data).hexdigest()
    try:
        tasks.submit(held, now)
        if seen_from is not None:  # the client's (address, user agent), as a keyed device sighting
            sightings.seen(worker_id, "submission", *seen_from)
        db.session.commit()
    except BaseException as exc:  # nothing recorded: the stored file goes too
        db.session.rollback()
        if submission.screenshot_key:
            try:
                storage().delete(submission.screenshot_key)
            except StorageUnavailable:  # an orphaned file is harmless; the lost error is not
                log.warning("could not delete the unrecorded upload %s", submission.screenshot_key)
        if isinstance(exc, IntegrityError):
            raise Conflict("Proof is already submitted for this task.") from None
        raise
    return submission


# --- reading -----------------------------------------------------------------------------------


def revision_requests(now: datetime) -> sa.Subquery:
    """The fragment the claims list embeds: per claim, the submission sent back for a revision that
    is still the claim's latest and whose deadline has not passed, with what the reviewer asked."""
    later = aliased(Submission)
    return (
        sa.select(Submission.claim_id, Submission.id.label("submission_id"), Submission.reason_code,
                  Submission.reason, Submission.revision_deadline, Submission.decided_at)
        .where(Submission.status == "revision_requested", Submission.revision_deadline > now,
               ~sa.exists().where(later.claim_id == Submission.claim_id, later.created_at > Submission.created_at))
        .subquery("revision_requests")
    )


def visible_submission(principal: Principal, submission_id: str) -> Submission:
    """The submission if the caller is its worker, the brief's brand or an admin; else 404."""
    row = db.session.execute(
        sa.select(Submission, Brief.brand_id).join(Brief, Brief.id == Submission.brief_id)
        .where(Submission.id == submission_id)
    ).first()
    if row is not None:
        submission, brand_id = row
        if (principal.is_admin
                or (principal.role == "worker" and submission.worker_id == principal.id)
                or (principal.role == "brand" and brand_id == principal.id)):
            return submission
    raise NotFound(f"No submission {submission_id}.")


def list_own(worker_id: str, *, limit: int, cursor: str | None) -> tuple[list[Submission], str | None]:
    return page(sa.select(Submission).where(Submission.worker_id == worker_id), Submission,
                limit=limit, cursor=cursor)


_SUBMISSION_ID = SUBMISSION_ID
_SEVERAL_OTHERS = re.compile(rf"{ANOTHER_SUBMISSION}(?:, {ANOTHER_SUBMISSION})+")


def disclosing(viewer: Principal | None, texts: list[str | None]) -> Callable[[str | None], str | None]:
    """A function that rewrites a detail for `viewer`: each submission id in it that the viewer may
    not open (see visible_submission) becomes ANOTHER_SUBMISSION. Admins (and None: internal use)
    see every id. One query for all of `texts`, however many ids they name."""
    if viewer is None or viewer.is_admin:
        return lambda text: text
    named = {found for text in texts if text for found in _SUBMISSION_ID.findall(text)}
    visible: set[str] = set()
    if named:
        query = sa.select(Submission.id).join(Brief, Brief.id == Submission.brief_id).where(Submission.id.in_(named))
        owner = Submission.worker_id if viewer.role == "worker" else Brief.brand_id
        visible = set(db.session.scalars(query.where(owner == viewer.id)))

    def rewrite(text: str | None) -> str | None:
        if not text:
            return text
        told = _SUBMISSION_ID.sub(lambda m: m.group(0) if m.group(0) in visible else ANOTHER_SUBMISSION, text)
        return _SEVERAL_OTHERS.sub("other submissions", told)

    return rewrite


def waits_for(status: str, outcomes: list[str]) -> str | None:
    """What a submission waits for: its checks (validation); approval at auto_approve_at, when every
    check passed; or a person, when a check warned (the auto-approval job never takes those)."""
    if status == "validating":
        return "validation"
    if status == "needs_review":
        return "auto_approval" if all(outcome == "pass" for outcome in outcomes) else "review"
    return None


def shown_auto_approve_at(submission: Submission, waiting: str | None) -> datetime | None:
    """auto_approve_at only while it can still happen: warned work waits for a person instead."""
    return submission.auto_approve_at if waiting in ("validation", "auto_approval") else None


def present(submissions: list[Submission], viewer: Principal | None = None) -> list[dict]:
    """API shapes of submissions, their checks loaded in one query."""
    ids = [s.id for s in submissions]
    checks: dict[str, list[SubmissionCheck]] = {i: [] for i in ids}
    if ids:
        for check in db.session.scalars(
            sa.select(SubmissionCheck).where(SubmissionCheck.submission_id.in_(ids))
            .order_by(SubmissionCheck.submission_id, SubmissionCheck.id)
        ):
            checks[check.submission_id].append(check)
    disclose = disclosing(viewer, [c.detail for found in checks.values() for c in found]
                          + [r.get("detail") for s in submissions for r in (s.rejection_reasons or [])])
    shaped = []
    for s in submissions:
        waiting = waits_for(s.status, [c.outcome for c in checks[s.id]])
        revision = None
        if s.revision_deadline is not None or s.status == "revision_requested":
            revision = {"reason_code": s.reason_code, "reason": s.reason, "deadline": s.revision_deadline}
        shaped.append({
            "id": s.id, "task_id": s.task_id, "claim_id": s.claim_id, "group_id": s.group_id,
            "brief_id": s.brief_id, "worker_id": s.worker_id, "status": s.status,
            "link": s.link, "text": s.text, "captured_at": s.captured_at,
            "screenshot_url": f"/v1/submissions/{s.id}/screenshot" if s.screenshot_key else None,
            "submitted_at": s.submitted_at, "auto_approve_at": shown_auto_approve_at(s, waiting),
            "waits_for": waiting, "validated_at": s.validated_at,
            "checks": [{"name": c.name, "outcome": c.outcome, "detail": disclose(c.detail), "checked_at": c.checked_at}
                       for c in checks[s.id]],
            "reasons": [{**r, "detail": disclose(r.get("detail"))} for r in (s.rejection_reasons or [])],
            "decided_at": s.decided_at, "reason_code": s.reason_code, "reason": s.reason,
            "revision": revision, "appealable_until": s.appealable_until, "paid_at": s.paid_at,
            "reversal": {"reversed_at": s.reversed_at, "detail": s.reversal} if s.reversed_at else None,
            "created_at": s.created_at,
        })
    return shaped


# A shared screenshot link (the content bank's CSV) opens for whoever holds it until it expires,
# the way a presigned S3 URL does: a spreadsheet cannot send a bearer token.
SHARED_LINK_DAYS = 7


def _link_signature(submission_id: str, expires: int) -> str:
    return keyed_digest(f"shared-screenshot:{submission_id}:{expires}")


def shared_screenshot_url(origin: str, submission_id: str) -> str:
    """A link to the screenshot that needs no credentials, valid SHARED_LINK_DAYS."""
    expires = int((utcnow() + timedelta(days=SHARED_LINK_DAYS)).timestamp())
    return (f"{origin}/v1/shared/screenshots/{submission_id}?expires={expires}"
            f"&signature={_link_signature(submission_id, expires)}")


def shared_screenshot_file(submission_id: str, expires: int, signature: str) -> StoredFile:
    """The screenshot behind a shared link; 404 for a link that is forged, altered or expired (the
    same answer for each, so the link tells nobody which submissions exist)."""
    # Bytes: compare_digest refuses a str with characters outside ASCII.
    if not hmac.compare_digest(_link_signature(submission_id, expires).encode(),
                               signature.encode("utf-8", "surrogateescape")) or \
            expires < utcnow().timestamp():
        raise NotFound("This screenshot link is not valid, or has expired.")
    return _stored_screenshot(db.session.get(Submission, submission_id))


def screenshot_file(principal: Principal, submission_id: str) -> StoredFile:
    """The stored screenshot and the content type its magic bytes announce (never the client's)."""
    return _stored_screenshot(visible_submission(principal, submission_id))


class NoPreview(DomainError):
    """The stored screenshot is no image that can be shown (the screenshot check says why)."""

    status = 422
    slug = "no-preview"


def screenshot_thumbnail(principal: Principal, submission_id: str) -> StoredFile:
    """A small PNG of the stored screenshot, or NoPreview (422) for one that cannot be decoded."""
    from marketplace.proofs.checks.screenshot import ImageRejected, thumbnail_png

    submission = visible_submission(principal, submission_id)
    data = b"".join(_stored_screenshot(submission).chunks)  # bounded by MAX_UPLOAD_BYTES at upload
    try:  # a hash is stored only for bytes the screenshot check decoded whole
        small = thumbnail_png(data, checked=submission.phash is not None)
    except ImageRejected as exc:
        raise NoPreview(f"No preview: {exc.detail}.") from None
    return StoredFile(iter([small]), "image/png", len(small))


@dataclass(frozen=True)
class StoredFile:
    """A stored file on its way out: streamed in chunks (never read whole), its length, and the
    content type its first bytes announce."""

    chunks: Iterator[bytes]
    content_type: str
    length: int


def _stored_screenshot(submission: Submission | None) -> StoredFile:
    from marketplace.proofs.checks.screenshot import CONTENT_TYPES, sniff_format

    if submission is None or not submission.screenshot_key:
        raise NotFound("This submission has no screenshot.")
    store = storage()
    try:
        length = store.size(submission.screenshot_key)
        body = store.open(submission.screenshot_key)
    except StorageKeyError:
        raise NotFound("The screenshot is no longer stored.") from None
    except StorageUnavailable as exc:
        raise ServiceUnavailable(f"Proof files cannot be read right now ({exc}); try again shortly.") from None
    try:
        head = body.read(16)
    except Exception:
        body.close()
        raise ServiceUnavailable("Proof files cannot be read right now; try again shortly.") from None

    def chunks() -> Iterator[bytes]:
        try:
            yield head
            while block := body.read(CHUNK):
                yield block
        finally:
            body.close()

    return StoredFile(chunks(), CONTENT_TYPES.get(sniff_format(head) or "", "application/octet-stream"), length)
