"""Submissions of proof, and the result of every check run on them."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

SUBMISSION_STATUSES = (
    "validating", "needs_review", "auto_rejected", "approved", "rejected", "revision_requested", "paid",
)
# What a submission waits for (see proofs.service.waits_for); null once decided.
WAITS_FOR = ("validation", "auto_approval", "review")
REASON_CODES = ("duplicate", "off_brief", "missing_disclosure", "broken_link", "low_quality", "other")
# A check's detail names the submission it matched (a duplicate, a near-copy): an id of another
# tenant's submission tells a worker or a brand something they cannot open. They read this instead.
ANOTHER_SUBMISSION = "another submission"
SUBMISSION_ID = re.compile(r"\bsub_[0-9a-f]{32}\b")


class Submission(db.Model):
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("sub"))
    task_id: Mapped[str] = mapped_column(sa.ForeignKey("tasks.id"), index=True)
    claim_id: Mapped[str] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("task_groups.id"), index=True)
    brief_id: Mapped[str] = mapped_column(sa.ForeignKey("briefs.id"))
    worker_id: Mapped[str] = mapped_column(sa.ForeignKey("workers.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="validating")

    # The proof as sent. The screenshot lives in storage under a key we made, never its file name.
    text: Mapped[str | None] = mapped_column(sa.Text)
    link: Mapped[str | None] = mapped_column(sa.String(2048))
    captured_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    screenshot_key: Mapped[str | None] = mapped_column(sa.String(200))
    screenshot_bytes: Mapped[int | None] = mapped_column(sa.Integer)
    screenshot_sha256: Mapped[str | None] = mapped_column(sa.String(64))

    # Facts the checks found. The 64-bit perceptual hash is stored signed (BIGINT) and as four
    # 16-bit chunks: two hashes within Hamming distance 6 share a chunk within distance 1, so
    # the near-duplicate lookup probes 4 × 17 index values instead of scanning every hash.
    phash: Mapped[int | None] = mapped_column(sa.BigInteger)
    phash_c0: Mapped[int | None] = mapped_column(sa.Integer)
    phash_c1: Mapped[int | None] = mapped_column(sa.Integer)
    phash_c2: Mapped[int | None] = mapped_column(sa.Integer)
    phash_c3: Mapped[int | None] = mapped_column(sa.Integer)
    # The content band's hash (the post itself, not the app's chrome around it: see
    # checks.screenshot.content_hashes) and its top, bottom, left and right halves, signed like phash.
    # Looked up through SubmissionContentKey; null for rows validated before migration 0029.
    content_phash: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_top: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_bottom: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_left: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_right: Mapped[int | None] = mapped_column(sa.BigInteger)
    exif_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    text_shingles: Mapped[list | None] = mapped_column(sa.JSON)
    # 1, 2, 3, … in the order facts were stored (see validation._store_facts): a submission is
    # compared with those stored before it, so of two that match, the later-stored one is the copy.
    facts_seq: Mapped[int | None] = mapped_column(sa.BigInteger)

    submitted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    auto_approve_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    validation_attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    validation_started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    validated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    rejection_reasons: Mapped[list | None] = mapped_column(sa.JSON)

    # The decision, by a person (decided_by = "admin:adm_…" / "brand:brand_…") or by auto-approval.
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(sa.String(60))
    reason_code: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    revision_deadline: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A rejection or an auto-rejection can be appealed until then (marketplace.appeals); fixed when
    # it is made, so a later APPEAL_WINDOW_DAYS never moves it.
    appealable_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    # Paid: when the transfer carrying its money settled. A reversal brings it back to approved
    # and says so here (reversed_at, reversal), so the worker sees why it is not paid any more.
    paid_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reversed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reversal: Mapped[str | None] = mapped_column(sa.String(500))

    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('validating', 'needs_review', 'auto_rejected', 'approved', 'rejected', "
            "'revision_requested', 'paid')", name="status_known"),
        sa.Index("ix_submissions_brief_status_created", "brief_id", "status", "created_at", "id"),
        sa.Index("ix_submissions_status_created", "status", "created_at", "id"),
        sa.Index("ix_submissions_worker_created", "worker_id", "created_at", "id"),
        sa.Index("ix_submissions_phash_c0", "phash_c0"),
        sa.Index("ix_submissions_phash_c1", "phash_c1"),
        sa.Index("ix_submissions_phash_c2", "phash_c2"),
        sa.Index("ix_submissions_phash_c3", "phash_c3"),
        sa.Index("uq_submissions_facts_seq", "facts_seq", unique=True),
        sa.Index("ix_submissions_brief_appealable", "brief_id", "appealable_until",
                 postgresql_where=sa.text("appealable_until IS NOT NULL"),
                 sqlite_where=sa.text("appealable_until IS NOT NULL")),
        # One submission per claim can be in play at a time; a revision request frees the claim.
        sa.Index("uq_submissions_claim_in_play", "claim_id", unique=True,
                 postgresql_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')"),
                 sqlite_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')")),
    )


class SubmissionContentKey(db.Model):
    """The index of content-band hashes: one row per 16-bit chunk of a submission's content hash and
    of each of its four halves, ``key = slot * 65536 + chunk`` (slots 0-3: the band's chunks, most
    significant first; 4 + 4 * half + position: the halves'). A lookup asks for every key within a
    few flipped bits of its own chunks (validation.find_content_copies says how many, and why that
    finds every copy the detector would call one); the primary key (key, submission_id) answers it
    from the index alone. Written once, with the hashes, by validation._store_facts."""

    __tablename__ = "submission_content_keys"

    key: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"), primary_key=True)


class SubmissionCheck(db.Model):
    """One check's latest result; re-running a check overwrites its row (jobs may run twice)."""

    __tablename__ = "submission_checks"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"))
    name: Mapped[str] = mapped_column(sa.String(32))
    outcome: Mapped[str] = mapped_column(sa.String(8))
    detail: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    checked_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("submission_id", "name", name="uq_submission_checks_submission_name"),
        sa.CheckConstraint("outcome IN ('pass', 'fail', 'warn')", name="outcome_known"),
    )
