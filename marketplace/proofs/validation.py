"""Validating a submission: run the checks that apply, save every result, decide the status.

Shape of one run (``validate_submission``), each step its own short transaction:

1. start: lock the row; unless it is still `validating`, stop; count the attempt.
2. facts: decode the screenshot (perceptual hash, EXIF time) and shingle the text, and
   commit those facts at once, numbered in the order facts are stored (facts_seq).
3. checks: duplicate and near-copy lookups among submissions numbered before this one (so
   of two that match, exactly one is the copy, however their jobs interleave), timestamp,
   link (network), text. No lock is held meanwhile; a check that raises becomes a `warn`
   result (a person looks), except for database/connection errors, which propagate so RQ
   retries the job.
4. finish: lock the row again; if another run finished first, change nothing; else
   upsert every check row, delete stale ones, and move to `needs_review` or, when a
   check failed, `auto_rejected` (the claim ends as rejected and the task reopens).

Running it twice, or twice at once, leaves one set of check rows and one decision.
"""

from __future__ import annotations

import functools
import logging
import socket
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from flask import current_app
from psycopg.types.json import Json
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from marketplace.briefs.models import Brief, TaskGroup
from marketplace.db import direct
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.failures import database_unavailable
from marketplace.db.upsert import upsert_insert
from marketplace.extensions import db
from marketplace.proofs import lifecycle
from marketplace.proofs.checks import FAIL, PASS, WARN, CheckResult
from marketplace.proofs.checks.link import Resolver, link_check
from marketplace.proofs.checks.ocr import media_disclosure_check
from marketplace.proofs.checks.screenshot import (
    CONTENT_HALF_THRESHOLD,
    CONTENT_HAMMING_THRESHOLD,
    ContentHashes,
    ImageRejected,
    chunk_neighbours,
    content_distance,
    content_duplicate_check,
    duplicate_check,
    hamming,
    inspect_image,
    is_content_copy,
    phash_chunks,
    rejected_check,
    screenshot_check,
    to_signed64,
    to_unsigned64,
)
from marketplace.proofs.checks.text import near_copy_check, shingles, text_check
from marketplace.proofs.checks.timestamp import timestamp_check
from marketplace.proofs.models import Submission, SubmissionCheck, SubmissionContentKey
from marketplace.proofs.storage import StorageKeyError, storage
from marketplace.tasks.models import Claim
from marketplace.workforce.models import SocialAccount

log = logging.getLogger(__name__)

# The near-copy comparison reads at most this many earlier texts of the brief (newest first):
# one bounded query, compared in memory.
NEAR_COPY_CANDIDATES = 2000
# Facts are numbered one submission at a time under this transaction-level advisory lock.
FACTS_LOCK = zlib.crc32(b"marketplace:submission-facts")
GAVE_UP_DETAIL = "validation did not complete; review by hand"


@dataclass
class _Snapshot:
    """What the checks need, read once at the start of a run."""

    submission_id: str
    claim_id: str
    brief_id: str
    worker_id: str
    created_at: datetime
    submitted_at: datetime
    captured_at: datetime | None
    screenshot_key: str | None
    link: str | None
    text: str | None
    claimed_at: datetime
    tracked_code: str
    window_start: datetime
    window_end: datetime
    prohibitions: list[str]
    disclosure_required: bool
    rules: dict
    disclosure_on_media: bool = False
    handles: dict[str, str] = field(default_factory=dict)  # platform -> the worker's registered handle
    screenshot_bytes: bytes | None = None  # kept for OCR, which runs after the cheap checks
    exif_at: datetime | None = None
    phash: int | None = None
    content: ContentHashes | None = None  # the content band's hashes (checks.screenshot.content_hashes)
    shingles: frozenset[int] = field(default_factory=frozenset)
    facts_seq: int | None = None  # set when the facts are stored


def _must_propagate(exc: BaseException) -> bool:
    """Errors a check must not turn into a verdict: a transient database or Redis failure (RQ
    retries the whole job), and RQ's job timeout (the job must stop, not carry on past it)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from rq.timeouts import BaseTimeoutException

    if isinstance(exc, RedisConnectionError | RedisTimeoutError | BaseTimeoutException):
        return True
    return isinstance(exc, DBAPIError | psycopg.OperationalError) and database_unavailable(exc)


def _guarded(name: str, run: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
    """Run one check; a surprise inside it becomes a warn for a person, never a crashed job."""
    try:
        result = run()
    except Exception as exc:
        if _must_propagate(exc):
            raise
        if isinstance(exc, SQLAlchemyError):
            # The facts are committed and the snapshot is in memory: what a failed statement left
            # is a transaction every later check and the finish would fail on.
            db.session.rollback()
        log.exception("check %s raised", name)
        return [CheckResult(name, WARN, f"the {name} check could not run ({type(exc).__name__}); "
                                        "a reviewer should look")]
    return result if isinstance(result, list) else [result]


# --- 1. start ----------------------------------------------------------------------------------


_STARTED_COLUMNS = ("id", "claim_id", "brief_id", "group_id", "worker_id", "created_at", "submitted_at",
                    "captured_at", "screenshot_key", "link", "text")


@functools.cache
def _start_statement() -> sa.Select:
    """Count the attempt and read what the checks need, as one statement (PostgreSQL): the UPDATE …
    RETURNING is a CTE joined to the claim, brief and group. Every value is a named parameter, so
    the statement is a constant, compiled once (marketplace.db.direct)."""
    started = (
        sa.update(Submission)
        .where(Submission.id == sa.bindparam("submission_id", type_=sa.String),
               Submission.status == sa.literal_column("'validating'"))
        .values(validation_attempts=sa.func.coalesce(Submission.validation_attempts, sa.literal_column("0"))
                + sa.literal_column("1"),
                validation_started_at=sa.bindparam("now", type_=sa.DateTime(timezone=True)))
        .returning(*(getattr(Submission, name) for name in _STARTED_COLUMNS))
    ).cte("started")
    return _snapshot_read(started)


def _snapshot_read(started) -> sa.Select:
    return (sa.select(started, Claim.claimed_at, Claim.tracked_code, Brief.starts_at, Brief.ends_at,
                      Brief.prohibitions, Brief.disclosure_required, Brief.disclosure_on_media, TaskGroup.proof)
            .select_from(started).join(Claim, Claim.id == started.c.claim_id)
            .join(Brief, Brief.id == started.c.brief_id).join(TaskGroup, TaskGroup.id == started.c.group_id))


def _start(submission_id: str) -> _Snapshot | None:
    # Counting the attempt locks the row, and only matches while it is still validating. On
    # PostgreSQL the same statement reads the claim, brief and group (five round trips were one
    # locking read, an update and three gets), and it runs alone in autocommit on the direct
    # engine: committed when it returns, so before any decoding, as the attempt must be, in one
    # round trip (no pre-ping, BEGIN or COMMIT of a session). A caller with its own transaction
    # open (a test holding the row) keeps the session's way, which sees what it has not committed.
    if db.session.get_bind().dialect.name == "postgresql" and not db.session().in_transaction():
        rows = direct.write(_start_statement(), {"submission_id": submission_id, "now": utcnow()})
        if not rows:
            return None
        row = SimpleNamespace(**rows[0])
    else:
        count_attempt = (
            sa.update(Submission).where(Submission.id == submission_id, Submission.status == "validating")
            .values(validation_attempts=sa.func.coalesce(Submission.validation_attempts, 0) + 1,
                    validation_started_at=utcnow())
            .returning(*(getattr(Submission, name) for name in _STARTED_COLUMNS))
        )
        if db.session.get_bind().dialect.name == "postgresql":
            started = count_attempt.cte("started")
        else:  # (SQLite has no UPDATE in a CTE: the update, then the same read of the row)
            if db.session.execute(count_attempt).first() is None:
                db.session.rollback()
                return None
            started = sa.select(*(getattr(Submission, name) for name in _STARTED_COLUMNS)).where(
                Submission.id == submission_id).subquery("started")
        row = db.session.execute(_snapshot_read(started)).one_or_none()
        if row is None:
            db.session.rollback()
            return None
        db.session.commit()
    snapshot = _Snapshot(
        submission_id=row.id, claim_id=row.claim_id, brief_id=row.brief_id, worker_id=row.worker_id,
        created_at=as_utc(row.created_at), submitted_at=as_utc(row.submitted_at),
        captured_at=as_utc(row.captured_at), screenshot_key=row.screenshot_key,
        link=row.link, text=row.text, claimed_at=as_utc(row.claimed_at), tracked_code=row.tracked_code,
        window_start=as_utc(row.starts_at), window_end=as_utc(row.ends_at),
        prohibitions=list(row.prohibitions or []), disclosure_required=bool(row.disclosure_required),
        rules=dict(row.proof or {}), disclosure_on_media=bool(row.disclosure_on_media),
    )
    if snapshot.disclosure_on_media and snapshot.screenshot_key:
        snapshot.handles = dict(db.session.execute(
            sa.select(SocialAccount.platform, SocialAccount.handle).where(SocialAccount.worker_id == row.worker_id)
        ).all())
        db.session.rollback()  # (a read: nothing to commit)
    return snapshot


# --- 2. facts ----------------------------------------------------------------------------------


def _screenshot_facts(snap: _Snapshot) -> list[CheckResult]:
    try:
        data = storage().get(snap.screenshot_key)
    except StorageKeyError:
        return [CheckResult("screenshot", WARN, "the stored screenshot could not be read; a reviewer should look")]
    try:
        # One decode gives the whole-screen hash, the content band's hashes and the EXIF time.
        facts = inspect_image(data, max_bytes=current_app.config["MAX_UPLOAD_BYTES"], content=True)
    except ImageRejected as rejected:
        return [rejected_check(rejected)]
    snap.phash = facts.phash
    snap.content = facts.content
    snap.exif_at = facts.exif_datetime
    if snap.disclosure_on_media:
        snap.screenshot_bytes = data
    return [screenshot_check(facts)]


def _store_facts(snap: _Snapshot) -> None:
    """Save the hash and shingles, numbered in the order facts are stored (facts_seq).

    One submission at a time takes the next number, under a transaction-level lock held to its
    commit (SQLite's single writer does the same there), so every submission numbered before
    this one is committed and visible to its checks, and every one numbered after will see it.
    A rerun keeps its first number.
    """
    values: dict[str, Any] = {}
    if snap.phash is not None:
        c0, c1, c2, c3 = phash_chunks(snap.phash)
        # A capture time with no zone is no instant: it is kept in the check's data, not here.
        exif_at = snap.exif_at if snap.exif_at is not None and snap.exif_at.tzinfo is not None else None
        values.update(phash=to_signed64(snap.phash), phash_c0=c0, phash_c1=c1, phash_c2=c2, phash_c3=c3,
                      exif_at=exif_at)
    if snap.content is not None:
        top, bottom, left, right = (to_signed64(h) for h in snap.content.stored_halves)
        values.update(content_phash=to_signed64(snap.content.stored), content_top=top, content_bottom=bottom,
                      content_left=left, content_right=right)
    if snap.shingles:
        values["text_shingles"] = sorted(snap.shingles)
    if not values:
        db.session.commit()
        return
    columns, params = tuple(sorted(values)), {"submission_id": snap.submission_id}
    params.update({f"v_{c}": v for c, v in values.items()})
    with_keys = snap.content is not None
    if with_keys:
        params["content_keys"] = stored_content_keys(snap.content)
    if _direct():
        # BEGIN, the locks, the numbering with the keys' insert, and COMMIT in one round trip
        # (pipelined: the server still runs them one after another, so the numbering begins only
        # once both locks are held).
        if "v_text_shingles" in params:
            params["v_text_shingles"] = Json(params["v_text_shingles"])  # (the driver's JSON, unlike SQLAlchemy's)
        with direct.transaction() as tx:
            _, numbered = tx.commit((_facts_lock_statement(), {"submission_id": snap.submission_id}),
                                    (_facts_statement(columns, with_keys), params))
        snap.facts_seq = numbered[0]["facts_seq"]
        return
    if db.session.get_bind().dialect.name == "postgresql":
        # The row first: waiting on it (a review decision holding it) while holding the
        # platform-wide lock would hold up every other validation meanwhile. The numbering must
        # be a statement of its own, after this one: a statement sees what was committed when it
        # began, and the one that takes the lock began before the lock was granted.
        db.session.execute(_facts_lock_statement(), {"submission_id": snap.submission_id})
        snap.facts_seq = db.session.execute(_facts_statement(columns, with_keys), params).scalar_one()
    else:
        number = (sa.update(Submission).where(Submission.id == snap.submission_id)
                  .values(**values, facts_seq=sa.func.coalesce(Submission.facts_seq, _next_facts_seq()))
                  .returning(Submission.facts_seq))
        snap.facts_seq = db.session.execute(number).scalar_one()
        if with_keys:
            db.session.execute(upsert_insert(SubmissionContentKey.__table__).values(
                [{"key": key, "submission_id": snap.submission_id} for key in params["content_keys"]]
            ).on_conflict_do_nothing(index_elements=["key", "submission_id"]))
    db.session.commit()


def _direct() -> bool:
    """Whether this run's statements go to the driver on the direct engine (marketplace.db.direct):
    PostgreSQL, and no transaction of the session's open (a test holding rows in it keeps the
    session's way, which sees what it has not committed)."""
    return direct.pipelines() and not db.session().in_transaction()


def _next_facts_seq() -> sa.ScalarSelect:
    return sa.select(sa.func.coalesce(sa.func.max(Submission.facts_seq), 0) + 1).scalar_subquery()


@functools.cache
def _facts_lock_statement() -> sa.Select:
    """Lock the submission's row, then take the lock that numbers facts (PostgreSQL)."""
    locked = (sa.select(Submission.id).where(Submission.id == sa.bindparam("submission_id", type_=sa.String))
              .with_for_update().cte("locked").prefix_with("MATERIALIZED", dialect="postgresql"))
    return sa.select(sa.func.pg_advisory_xact_lock(sa.literal_column(str(FACTS_LOCK)))).select_from(locked)


@functools.cache
def _facts_statement(columns: tuple[str, ...], with_keys: bool) -> sa.Select | sa.Update:
    """Store the named facts (parameters ``v_<column>``) and number them, and with_keys insert the
    content band's index keys (``content_keys``) as a CTE of the same statement (it runs whether or
    not the statement reads it). Every value is a parameter: one constant statement per shape."""
    table = Submission.__table__
    submission_id = sa.bindparam("submission_id", type_=sa.String)
    number = (sa.update(Submission).where(Submission.id == submission_id)
              .values(**{c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns},
                      facts_seq=sa.func.coalesce(Submission.facts_seq, _next_facts_seq()))
              .returning(Submission.facts_seq))
    if not with_keys:
        return number
    keys = sa.cast(sa.bindparam("content_keys", type_=postgresql.ARRAY(sa.Integer)), postgresql.ARRAY(sa.Integer))
    insert = postgresql.insert(SubmissionContentKey.__table__).from_select(
        ["key", "submission_id"], sa.select(sa.func.unnest(keys), submission_id))
    numbered = number.cte("numbered")
    return sa.select(numbered.c.facts_seq).add_cte(
        insert.on_conflict_do_nothing(index_elements=["key", "submission_id"]).cte("content_keys"))


def _compared_with(snap: _Snapshot | None) -> sa.ColumnElement[bool]:
    """The submissions a check compares this one with: stored before it, of other claims, and
    not this worker's own rejected work (proof resubmitted after a rejection is no copy). Its
    values are named parameters (_compared_params), bound to the snapshot's when one is given."""
    values = _compared_params(snap) if snap is not None else {}
    bound = {name: sa.bindparam(name, values.get(name), type_=kind)
             for name, kind in (("facts_seq", sa.BigInteger), ("claim_id", sa.String), ("worker_id", sa.String))}
    # (Two comparisons, not IN: an IN list is an expanding parameter, which a constant statement
    # on the direct path cannot have.)
    own_rejected = sa.and_(Submission.worker_id == bound["worker_id"],
                           sa.or_(Submission.status == "rejected", Submission.status == "auto_rejected"))
    return sa.and_(Submission.facts_seq < bound["facts_seq"], Submission.claim_id != bound["claim_id"],
                   sa.not_(own_rejected))


def _compared_params(snap: _Snapshot) -> dict[str, Any]:
    return {"facts_seq": snap.facts_seq, "claim_id": snap.claim_id, "worker_id": snap.worker_id}


# --- 3. checks -------------------------------------------------------------------------------


def find_near_duplicates(
    phash: int, *, threshold: int, among: sa.ColumnElement[bool] | None = None, limit: int = 20,
) -> list[tuple[str, int]]:
    """(submission id, Hamming distance) of stored hashes within ``threshold``, closest and
    first-stored first, among the submissions ``among`` selects (default: all).

    Multi-index lookup: the four 16-bit chunks of the hash, each with its 16 one-bit
    neighbours, probe the four chunk indexes (a BitmapOr of 68 index values); only those
    candidates get the exact distance. Pigeonhole makes this complete up to distance 7, the
    most the configuration allows (config.MAX_DUPLICATE_HAMMING_THRESHOLD).
    """
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        rows = db.session.execute(_near_duplicates_query(among, limit), _near_duplicate_params(phash, threshold)).all()
        return [(row.id, int(row.distance)) for row in rows]
    neighbours = [chunk_neighbours(c) for c in phash_chunks(phash)]
    probe = sa.or_(*(getattr(Submission, f"phash_c{i}").in_(neighbours[i]) for i in range(4)))
    where = probe if among is None else sa.and_(probe, among)
    # Other databases (the embedded SQLite default): the same index probe, distance in Python.
    query = sa.select(Submission.id, Submission.phash, Submission.facts_seq).where(where)
    found = [(row.id, hamming(row.phash, phash), row.facts_seq or 0) for row in db.session.execute(query)]
    found = sorted((m for m in found if m[1] <= threshold), key=lambda m: (m[1], m[2], m[0]))
    return [(sub_id, distance) for sub_id, distance, _ in found[:limit]]


def _near_duplicates_query(among: sa.ColumnElement[bool] | None, limit: int) -> sa.Select:
    """find_near_duplicates' statement on PostgreSQL (id, distance, created_at), its hash values named
    parameters (_near_duplicate_params): `= ANY(:array)`, one parameter a chunk, is the same index
    probe as IN, without SQLAlchemy expanding 68 parameters into the statement's text every time."""
    probe = sa.or_(*(getattr(Submission, f"phash_c{i}") == sa.any_(
        sa.bindparam(f"phash_c{i}_near", type_=postgresql.ARRAY(sa.Integer))) for i in range(4)))
    distance = sa.func.bit_count(sa.cast(
        Submission.phash.op("#")(sa.cast(sa.bindparam("phash", type_=sa.BigInteger), sa.BigInteger)),
        postgresql.BIT(64)))
    return (sa.select(Submission.id, distance.label("distance"), Submission.created_at)
            .where(probe if among is None else sa.and_(probe, among),
                   distance <= sa.bindparam("threshold", type_=sa.Integer))
            .order_by(distance, Submission.facts_seq, Submission.id).limit(limit))


def _near_duplicate_params(phash: int, threshold: int) -> dict[str, Any]:
    params: dict[str, Any] = {"phash": to_signed64(phash), "threshold": threshold}
    params.update({f"phash_c{i}_near": chunk_neighbours(c) for i, c in enumerate(phash_chunks(phash))})
    return params


# --- content-band copies: the chunk index -------------------------------------------------------
#
# Every stored content hash and each of its four halves is cut into four 16-bit chunks; the row
# (slot * 65536 + chunk, submission id) of each is in submission_content_keys (slots 0-3: the band,
# 4 + 4 * half + position: the halves). is_content_copy accepts a pair when (a) some probe is within
# CONTENT_HAMMING_THRESHOLD (9) bits of the stored band, or (b) some probe is within 14 and a half
# within CONTENT_HALF_THRESHOLD (6) bits of the stored one. Pigeonhole, for (a): nine differing bits
# cannot put three or more into each of four chunks (that takes 12), so some chunk of that probe is
# within 2 bits of the stored chunk: each probe asks for its chunks' radius-2 neighbours (137 each).
# For (b): six bits cannot put two into each of four chunks (that takes 8), so some chunk of that
# half is within 1 bit (17 neighbours). At most 9 x 4 x 137 + 4 x 4 x 17 = 5,204 keys (fewer: the probes share
# chunks), every one an index-only probe of the primary key; every pair the detector would call a
# copy is among the candidates, which is_content_copy then verifies.

_KEY_SLOT = 1 << 16
_RADIUS_2 = sorted({0} | {1 << i for i in range(16)} | {(1 << i) | (1 << j) for i in range(16) for j in range(i)})
_RADIUS_1 = [0] + [1 << i for i in range(16)]
_FLIPS_2, _FLIPS_1 = np.array(_RADIUS_2, dtype=np.int64), np.array(_RADIUS_1, dtype=np.int64)
assert CONTENT_HAMMING_THRESHOLD < 4 * 3 and CONTENT_HALF_THRESHOLD < 4 * 2  # the bounds above


def stored_content_keys(hashes: ContentHashes) -> list[int]:
    """The index keys of a screenshot's stored band and halves (20)."""
    keys = [slot * _KEY_SLOT + chunk for slot, chunk in enumerate(phash_chunks(hashes.stored))]
    for half, value in enumerate(hashes.stored_halves):
        keys += [(4 + 4 * half + position) * _KEY_SLOT + chunk for position, chunk in enumerate(phash_chunks(value))]
    return keys


def probe_content_keys(hashes: ContentHashes) -> list[int]:
    """Every key a stored screenshot the detector would call a copy of this one has at least one of."""
    # In numpy: the same keys as the two loops of set updates were, in a tenth of their ~0.7 ms.
    band = np.array([phash_chunks(probe) for probe in hashes.probes], dtype=np.int64)  # probes x 4 slots
    band = np.arange(4)[:, None] * _KEY_SLOT + (band[:, :, None] ^ _FLIPS_2)
    halves = np.array([phash_chunks(value) for value in hashes.probe_halves], dtype=np.int64)  # 4 halves x 4
    halves = (4 + np.arange(16).reshape(4, 4, 1)) * _KEY_SLOT + (halves[:, :, None] ^ _FLIPS_1)
    return np.union1d(band.ravel(), halves.ravel()).tolist()


def content_candidates(hashes: ContentHashes) -> sa.Select:
    """The ids of submissions whose stored content keys meet this screenshot's probe keys (an
    index-only scan of the primary key on PostgreSQL: ``key = ANY(array)``)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return _candidates_query(_probe_array(hashes))
    return (sa.select(SubmissionContentKey.submission_id)
            .where(SubmissionContentKey.key.in_(probe_content_keys(hashes))).distinct())


def _probe_array(hashes: ContentHashes) -> str:
    """The probe keys as one array literal, text the server parses: bound as a list, psycopg and
    SQLAlchemy's ARRAY handled each of the 2,000-5,000 ints in Python (~2-5 ms a job, where the
    server's probe itself takes ~0.2 ms)."""
    return "{" + ",".join(map(str, probe_content_keys(hashes))) + "}"


def _candidates_query(probe: str | None = None) -> sa.Select:
    """content_candidates on PostgreSQL, the probe array the parameter ``content_probe``. Unnested in
    a subquery the cast runs once, not again for every row scanned (as in `key = ANY(CAST(:keys AS
    int[]))` it would: ~80 ms a job)."""
    keys = sa.func.unnest(sa.cast(sa.bindparam("content_probe", probe, type_=sa.Text), postgresql.ARRAY(sa.Integer)))
    return sa.select(SubmissionContentKey.submission_id).where(SubmissionContentKey.key.in_(sa.select(keys))).distinct()


def _content_copies_query(candidates: sa.Select, among: sa.ColumnElement[bool] | None) -> sa.Select:
    where = Submission.id.in_(candidates)
    return (sa.select(Submission.id, Submission.created_at, Submission.facts_seq, Submission.content_phash,
                      Submission.content_top, Submission.content_bottom, Submission.content_left,
                      Submission.content_right)
            .where(where if among is None else sa.and_(where, among), Submission.content_phash.is_not(None)))


def find_content_copies(
    hashes: ContentHashes, *, among: sa.ColumnElement[bool] | None = None, limit: int = 20,
) -> list[tuple[str, int, datetime]]:
    """(submission id, content distance, created_at) of stored screenshots the content-band detector
    calls copies of this one (is_content_copy), closest and first-stored first, among ``among``."""
    rows = db.session.execute(_content_copies_query(content_candidates(hashes), among)).all()
    return _content_copies(hashes, [row._mapping for row in rows], limit)


def _content_copies(hashes: ContentHashes, rows: Iterable[Any], limit: int) -> list[tuple[str, int, datetime]]:
    """The candidate rows (mappings of _content_copies_query's columns) that are copies, verified."""
    found = []
    for row in rows:
        stored = to_unsigned64(row["content_phash"])
        halves = [to_unsigned64(row[f"content_{side}"]) for side in ("top", "bottom", "left", "right")]
        if is_content_copy(hashes.probes, hashes.probe_halves, stored, halves):
            found.append((content_distance(hashes.probes, stored), row["facts_seq"] or 0, row["id"],
                          as_utc(row["created_at"])))
    found.sort(key=lambda m: m[:3])
    return [(sub_id, distance, created) for distance, _, sub_id, created in found[:limit]]


@functools.cache
def _duplicate_statements() -> tuple[sa.Select, sa.Select]:
    """The whole-screen and the content-band lookups as the direct path runs them: constants, every
    value a parameter (_compared_params, _near_duplicate_params, ``content_probe``)."""
    among = _compared_with(None)
    return _near_duplicates_query(among, 20), _content_copies_query(_candidates_query(), among)


def _duplicate_matches(snap: _Snapshot, threshold: int) -> tuple[list, list]:
    """(whole-screen matches as (id, distance, created_at), content copies as find_content_copies gives
    them) among the submissions this one is compared with. On the direct path both lookups go in
    one round trip, and the matches' created_at come with them."""
    if not _direct():
        among = _compared_with(snap)
        matches = _with_created_at(find_near_duplicates(snap.phash, threshold=threshold, among=among))
        return matches, find_content_copies(snap.content, among=among) if snap.content is not None else []
    near, copies = _duplicate_statements()
    compared = _compared_params(snap)
    steps = [(near, {**compared, **_near_duplicate_params(snap.phash, threshold)})]
    if snap.content is not None:
        steps.append((copies, {**compared, "content_probe": _probe_array(snap.content)}))
    with direct.transaction() as tx:
        found = tx.commit(*steps)
    matches = [(row["id"], int(row["distance"]), as_utc(row["created_at"])) for row in found[0]]
    return matches, _content_copies(snap.content, found[1], 20) if snap.content is not None else []


def _duplicate_result(snap: _Snapshot) -> CheckResult:
    """Near-duplicates among the pictures whose facts were stored before this one's: the whole
    screen's hash within DUPLICATE_HAMMING_THRESHOLD, or the content band's (an edited copy: cropped,
    recompressed, rescaled, retoned, a sticker on it). A match submitted before this one is its
    original (this fails); one submitted after it but validated first is a copy of it, and is failed
    in its stead (see _fail_later_copies). The whole-screen match is named first when both match."""
    threshold = current_app.config["DUPLICATE_HAMMING_THRESHOLD"]
    matches, content = _duplicate_matches(snap, threshold)
    earlier, later = _by_submission_time(snap, matches)
    content_earlier, content_later = _by_submission_time(snap, content)
    result = duplicate_check(earlier, threshold)
    if result.outcome != FAIL and content_earlier:
        result = content_duplicate_check(content_earlier)
    if result.outcome == FAIL or not (later or content_later):
        return result
    copies = {sub_id: CheckResult(
        "duplicate", FAIL, f"near-duplicate of {snap.submission_id} (content distance {distance}), "
        "which was submitted before it", {"matched_submission_id": snap.submission_id, "distance": distance,
                                          "threshold": CONTENT_HAMMING_THRESHOLD, "method": "content"},
    ) for sub_id, distance in content_later}
    copies.update({sub_id: CheckResult(
        "duplicate", FAIL, f"near-duplicate of {snap.submission_id} (distance {distance}), "
        "which was submitted before it", {"matched_submission_id": snap.submission_id,
                                          "distance": distance, "threshold": threshold},
    ) for sub_id, distance in later})
    return _fail_later_copies(snap, result, copies)


def _with_created_at(matches: list[tuple[str, Any]]) -> list[tuple[str, Any, datetime]]:
    """(id, value, created_at) for (id, value) matches, in the order given: one query, none when no match."""
    if not matches:
        return []
    created = dict(db.session.execute(
        sa.select(Submission.id, Submission.created_at).where(Submission.id.in_([m[0] for m in matches]))).all())
    return [(sub_id, value, as_utc(created[sub_id])) for sub_id, value in matches]


def _by_submission_time(snap: _Snapshot, matches: list[tuple[str, Any, datetime]]) -> tuple[list, list]:
    """(id, value) of the matches submitted before this submission, and after it (in the order given)."""
    mine = (snap.created_at, snap.submission_id)
    earlier = [(sub_id, value) for sub_id, value, created in matches if (created, sub_id) < mine]
    return earlier, [(sub_id, value) for sub_id, value, created in matches if (created, sub_id) > mine]


def _fail_later_copies(snap: _Snapshot, result: CheckResult, copies: dict[str, CheckResult]) -> CheckResult:
    """Copies of this submission submitted after it whose jobs ran first (so they could not see it)
    are failed now with the given results, as their own job would have: auto_rejected, claim
    ended, task reopened. Ones a person already approved are left to a person, and this
    submission's result becomes a warn that says so. Rows are locked in id order, as a review
    decision locks them, and a copy's own job finishing meanwhile waits and then changes nothing."""
    rows = db.session.scalars(
        sa.select(Submission).where(Submission.id.in_(list(copies))).order_by(Submission.id).with_for_update()
    ).all()
    decided = [row.id for row in rows if row.status in ("approved", "paid", "revision_requested")]
    undecided = [row for row in rows if row.status in ("validating", "needs_review")]
    upsert_checks([(row.id, copies[row.id]) for row in undecided])
    _auto_reject(undecided, {row.id: [copies[row.id]] for row in undecided})
    db.session.commit()
    data = {**result.data, "later_copies": sorted(copies)}
    if decided:
        return CheckResult(result.name, WARN, f"{', '.join(decided)}, submitted after this one, match it and were "
                           "already decided by a person; a reviewer should look", data)
    return CheckResult(result.name, result.outcome, result.detail, data)


def _timestamp_result(snap: _Snapshot) -> CheckResult:
    return timestamp_check(
        captured_at=snap.captured_at, exif_at=snap.exif_at, claimed_at=snap.claimed_at,
        submitted_at=snap.submitted_at, window_start=snap.window_start, window_end=snap.window_end,
    )


def static_hosts_resolver(hosts: dict[str, str]) -> Resolver:
    """A resolver answering the configured names itself (tests/dev), the system's DNS otherwise."""

    def resolve(host: str, port: int) -> Iterable[Any]:
        if host.lower() in hosts:
            return [hosts[host.lower()]]
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)

    return resolve


def _link_result(snap: _Snapshot, resolver: Resolver | None) -> CheckResult:
    rule = snap.rules.get("link") or {}
    # '*' in the brief means "any value"; the check takes None for that.
    utm = {key: (None if value == "*" else value) for key, value in (rule.get("required_utm") or {}).items()}
    if resolver is None and current_app.config.get("LINK_CHECK_STATIC_HOSTS"):
        resolver = static_hosts_resolver(current_app.config["LINK_CHECK_STATIC_HOSTS"])
    return link_check(
        snap.link or "", allowed_domains=list(rule.get("allowed_domains") or []),
        tracked_code=snap.tracked_code, required_utm=utm,
        allow_private=bool(current_app.config.get("LINK_CHECK_ALLOW_PRIVATE")), resolver=resolver,
    )


def _text_results(snap: _Snapshot) -> list[CheckResult]:
    rule = snap.rules.get("text") or {}
    return text_check(
        snap.text, min_length=rule.get("min_length"), max_length=rule.get("max_length"),
        prohibited=snap.prohibitions, disclosure_required=snap.disclosure_required,
        required=bool(rule.get("required", True)) if rule else False,
    )


def _near_copy_result(snap: _Snapshot) -> CheckResult:
    """Near-copies among the brief's texts whose facts were stored before this one's, newest
    NEAR_COPY_CANDIDATES of them: an earlier-submitted match is the original (this fails), a
    later-submitted one is a copy of this and is failed instead, as with duplicate pictures."""
    candidates = db.session.execute(
        sa.select(Submission.id, Submission.text_shingles)
        .where(Submission.brief_id == snap.brief_id, Submission.text_shingles.is_not(None), _compared_with(snap))
        .order_by(Submission.facts_seq.desc()).limit(NEAR_COPY_CANDIDATES)
    ).all()
    # First stored first, so a tie blames the original rather than an earlier copy of it.
    earlier, later = _by_submission_time(snap, _with_created_at([(row.id, row.text_shingles) for row in reversed(candidates)]))
    result = near_copy_check(snap.text or "", earlier)
    if result.outcome != PASS or not later:
        return result
    copies = {}
    for sub_id, theirs in later:
        found = near_copy_check(snap.text or "", [(sub_id, theirs)])
        if found.outcome == FAIL:
            copies[sub_id] = CheckResult("near_copy", FAIL, f"near-copy of {snap.submission_id} "
                                         f"(similarity {found.data['similarity']:.2f}), which was submitted before it",
                                         {**found.data, "matched_submission_id": snap.submission_id})
    return _fail_later_copies(snap, result, copies) if copies else result


def run_checks(snap: _Snapshot, *, resolver: Resolver | None = None) -> list[CheckResult]:
    """Every check that applies to the submission, in a stable order, none of them raising."""
    results: list[CheckResult] = []
    if snap.screenshot_key:
        results += _guarded("screenshot", lambda: _screenshot_facts(snap))
    text_applies = bool(snap.rules.get("text")) or bool((snap.text or "").strip())
    if text_applies and (snap.text or "").strip():
        snap.shingles = shingles(snap.text)
    _store_facts(snap)
    if snap.phash is not None:
        results += _guarded("duplicate", lambda: _duplicate_result(snap))
    # A capture time only means something for captured proof (a screenshot, or a time given).
    if snap.screenshot_key or snap.captured_at is not None:
        results += _guarded("timestamp", lambda: _timestamp_result(snap))
    if snap.link:  # a required link's absence is refused at submission (422); an optional one is fine
        results += _guarded("link", lambda: _link_result(snap, resolver))
    if text_applies:
        results += _guarded("text", lambda: _text_results(snap))
        if snap.shingles:
            results += _guarded("near_copy", lambda: _near_copy_result(snap))
    # OCR last, and only for proof no cheap check failed: it costs more than all of them together,
    # and a rejected proof needs no reading.
    if snap.screenshot_bytes is not None and not any(r.outcome == FAIL for r in results):
        results = [_media_result(snap, r) if r.name == "screenshot" else r for r in results]
    return results


def _platform_of(link: str | None) -> str | None:
    """The platform a post link is on (its host), or None."""
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(link or "").hostname or "").lower()
    except ValueError:
        return None
    for platform, domains in PLATFORM_DOMAINS.items():
        if any(host == d or host.endswith("." + d) for d in domains):
            return platform
    return None


PLATFORM_DOMAINS = {"tiktok": ("tiktok.com",), "instagram": ("instagram.com",),
                    "youtube": ("youtube.com", "youtu.be"), "x": ("x.com", "twitter.com")}


def _media_result(snap: _Snapshot, screenshot: CheckResult) -> CheckResult:
    """The screenshot verdict with the disclosure read on the image (OCR) folded in."""
    platform = _platform_of(snap.link)
    # The handle registered on the link's platform; without a link, any registered one may show.
    handles = [snap.handles[platform]] if platform in snap.handles else (
        [] if platform else list(snap.handles.values()))
    config = current_app.config
    [result] = _guarded("screenshot", lambda: media_disclosure_check(
        screenshot, snap.screenshot_bytes, handles=handles, caption=snap.text,
        binary=config["OCR_TESSERACT_BINARY"], timeout=config["OCR_TIMEOUT_SECONDS"]))
    return result


# --- 4. finish -----------------------------------------------------------------------------------


# Rows per INSERT of check results: six parameters each, well under the driver's 65,535.
UPSERT_CHUNK = 5000


def _check_rows(results: list[tuple[str, CheckResult]], now: datetime) -> list[dict]:
    return [{"submission_id": sub_id, "name": r.name, "outcome": r.outcome, "detail": r.detail, "data": r.data,
             "checked_at": now} for sub_id, r in results]


def _upserting(statement):
    """The INSERT of check rows made an upsert: a check's row is overwritten by its newer result."""
    return statement.on_conflict_do_update(
        index_elements=["submission_id", "name"],
        set_={"outcome": statement.excluded.outcome, "detail": statement.excluded.detail,
              "data": statement.excluded.data, "checked_at": statement.excluded.checked_at},
    )


def upsert_checks(results: list[tuple[str, CheckResult]]) -> None:
    """Save each (submission id, result) as that check's one row, inserted or overwritten, set-based
    (a statement per UPSERT_CHUNK rows: the sweep may give up on tens of thousands at once)."""
    now = utcnow()
    for start in range(0, len(results), UPSERT_CHUNK):
        rows = _check_rows(results[start:start + UPSERT_CHUNK], now)
        db.session.execute(_upserting(upsert_insert(SubmissionCheck.__table__).values(rows)))


def _lock_and_save(snap: _Snapshot, latest: list[CheckResult]) -> tuple[str, int]:
    """Lock the submission and, while it is still validating, save its check rows: (status, attempts)
    as they are once locked. On PostgreSQL one statement: the row is locked in a materialized CTE
    (it reads the newest committed version once the lock is granted) and the rows' INSERT … SELECT
    only writes when that locked row is validating."""
    locked = (sa.select(Submission.id, Submission.status, Submission.validation_attempts)
              .where(Submission.id == snap.submission_id).with_for_update())
    if db.session.get_bind().dialect.name != "postgresql":
        _, status, attempts = db.session.execute(locked).one()
        if status == "validating":
            upsert_checks([(snap.submission_id, r) for r in latest])
        return status, attempts or 0
    results = [{"name": r.name, "outcome": r.outcome, "detail": r.detail, "data": r.data} for r in latest]
    status, attempts = db.session.execute(
        _lock_and_save_statement(), {"submission_id": snap.submission_id, "results": results, "now": utcnow()}).one()
    return status, attempts or 0


@functools.cache
def _lock_and_save_statement() -> sa.Select:
    """_lock_and_save's one statement on PostgreSQL, a constant: its values are the parameters
    submission_id, results and now, so it is built and compiled once, not for every job."""
    locked = (sa.select(Submission.id, Submission.status, Submission.validation_attempts)
              .where(Submission.id == sa.bindparam("submission_id", type_=sa.String)).with_for_update()
              .cte("locked").prefix_with("MATERIALIZED", dialect="postgresql"))
    table = SubmissionCheck.__table__
    # The results as one JSON parameter unpacked in the database, so that the statement is the same
    # however many checks ran (a multi-row VALUES is compiled anew every time).
    results = sa.func.json_to_recordset(sa.bindparam("results", type_=sa.JSON)).table_valued(
        *(sa.column(name, table.c[name].type) for name in ("name", "outcome", "detail")),
        sa.column("data", postgresql.JSON)).render_derived("results", with_types=True)
    save = _upserting(postgresql.insert(table).from_select(
        ["submission_id", "name", "outcome", "detail", "data", "checked_at"],
        sa.select(locked.c.id, results.c.name, results.c.outcome, results.c.detail, results.c.data,
                  sa.bindparam("now", type_=table.c.checked_at.type))
        .select_from(locked).join(results, sa.true()).where(locked.c.status == "validating")))
    return sa.select(locked.c.status, locked.c.validation_attempts).add_cte(save.cte("saved"))


def _auto_reject(rows: list[Submission], failures: dict[str, list[CheckResult]]) -> None:
    """Reject (locked) submissions for the checks that failed: their claims end as rejected and
    their tasks reopen, in one statement for all of them."""
    lifecycle.auto_reject(rows, {row.id: [{"check": r.name, "detail": r.detail,
                                           "reason_code": lifecycle.reason_code_for(r.name, r.data)}
                                          for r in failures[row.id]]
                                 for row in rows})


def _finish(snap: _Snapshot, results: list[CheckResult]) -> str:
    # One row per check name: later results of the same name (none today) would overwrite.
    latest = list({r.name: r for r in results}.values())
    status, attempts = _lock_and_save(snap, latest)
    if status != "validating":
        # Another run of this job finished first; its results stand (and nothing was saved).
        db.session.rollback()
        return status
    if attempts > 1:
        # Only an earlier run can have left rows this one no longer has (a copy failed by another
        # submission's job is auto_rejected, so its own first run stops above): one statement fewer.
        db.session.execute(sa.delete(SubmissionCheck).where(
            SubmissionCheck.submission_id == snap.submission_id, SubmissionCheck.name.not_in([r.name for r in latest])))
    failures = [r for r in latest if r.outcome == FAIL]
    now = utcnow()
    if failures:
        # (The row is locked: loading it waits on nothing. A rejection is the rarer way out, and
        # the claim's and notification's writes want the row's fields.)
        row = db.session.get(Submission, snap.submission_id, populate_existing=True)
        row.validated_at = now
        _auto_reject([row], {row.id: failures})
        status = row.status
    else:
        # Set-based: the move and its event, no ORM object loaded or flushed.
        if not lifecycle.pass_checks_of(snap.submission_id, now):
            raise lifecycle.IllegalMove(f"submission {snap.submission_id} was locked validating and did not move")
        status = lifecycle.SUBMISSION_MOVES["pass_checks"].target
    db.session.commit()
    return status


def validate_submission(submission_id: str, *, resolver: Resolver | None = None) -> str | None:
    """Validate one submission; returns its status afterwards (None when it does not exist)."""
    snap = _start(submission_id)
    if snap is None:
        return db.session.scalar(sa.select(Submission.status).where(Submission.id == submission_id))
    results = run_checks(snap, resolver=resolver)
    return _finish(snap, results)


# --- the sweep --------------------------------------------------------------------------------------


def stuck_submissions(older_than: datetime, max_attempts: int) -> tuple[list[tuple[str, int]], list[str]]:
    """Submissions still validating since before ``older_than``: (to re-run with attempts, to give up on).

    The ones given up on move to needs_review here, with a warn check saying a person must
    look; both steps are set-based and happen in one transaction.
    """
    last_activity = sa.func.coalesce(Submission.validation_started_at, Submission.submitted_at)
    stuck = sa.and_(Submission.status == "validating", last_activity < older_than)
    now = utcnow()
    given_up = lifecycle.give_up_validating(sa.and_(stuck, Submission.validation_attempts >= max_attempts), now)
    gave_up = CheckResult("validation", WARN, GAVE_UP_DETAIL, {"max_attempts": max_attempts})
    upsert_checks([(sub_id, gave_up) for sub_id in given_up])
    rerun = db.session.execute(
        sa.select(Submission.id, Submission.validation_attempts).where(stuck, Submission.validation_attempts < max_attempts)
        .order_by(Submission.submitted_at).limit(1000)
    ).all()
    db.session.commit()
    return [(row.id, row.validation_attempts) for row in rerun], list(given_up)
