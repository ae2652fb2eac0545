"""Idempotency-Key on POSTs: the same key and body get the first response back; another body, 409."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import psycopg
import sqlalchemy as sa
from flask import Flask, Response, g, request
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.auth import authenticated_principal, bearer_secret
from marketplace.auth.service import CREDENTIAL_CHECK, hash_secret, principal_from
from marketplace.db import direct
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import new_id
from marketplace.errors import Conflict, InvalidInput
from marketplace.extensions import db
from marketplace.http import route_facts

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A request that has not finished after this long died with its process; let a retry run.
ABANDONED_AFTER = timedelta(minutes=2)
KEPT_FOR = timedelta(hours=24)


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("idem"))
    principal: Mapped[str] = mapped_column(sa.String(60))
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    location: Mapped[str | None] = mapped_column(sa.String(2048))
    body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (sa.UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)


def _fingerprint() -> str:
    """What makes two requests the same one. A multipart body is compared by its fields and its
    files' contents, not its bytes: clients draw a new boundary for every retry of an upload."""
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    digest.update((request.mimetype or "").encode() + b"\n")
    if request.mimetype == "multipart/form-data":
        # (A part with no name is filed under None; the view refuses it, after the role check.)
        for name, value in sorted(request.form.items(multi=True), key=lambda item: (str(item[0]), item[1])):
            digest.update(b"field %r=%r\n" % (str(name).encode(), value.encode()))
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: str(item[0])):
            content = hashlib.sha256()
            while chunk := upload.stream.read(1 << 16):
                content.update(chunk)
            upload.stream.seek(0)  # the view reads it again
            digest.update(b"file %r=%s\n" % (str(name).encode(), content.hexdigest().encode()))
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _own_transaction():
    """Records live outside the request's transaction so they are seen at once by a retry."""
    return db.engine.begin()


# The record's statements run one each on the autocommit engine (marketplace/db/direct.py): one
# round trip apiece, where a transaction of the ORM's own costs a pre-ping, BEGIN and COMMIT
# besides. A conflict on (principal, key) is the answer "taken", not an error to catch.
_RESERVE = sa.text("""
INSERT INTO idempotency_records (id, principal, key, request_hash, created_at)
VALUES (:id, :principal, :key, :request_hash, :created_at)
ON CONFLICT (principal, key) DO NOTHING
RETURNING id
""")
# The caller's credential and the reservation in one round trip: the record is inserted only for a
# credential that lets the caller in (unrevoked, unexpired at :created_at), under its scope; the
# credential's row comes back whether or not the key was free (`reserved` NULL when taken), and no
# row at all when no credential matches.
_AUTHENTICATE_AND_RESERVE = sa.text(f"""
WITH cred AS ({CREDENTIAL_CHECK}), reserved AS (
    INSERT INTO idempotency_records (id, principal, key, request_hash, created_at)
    SELECT :id, cred.role || ':' || cred.principal_id, :key, :request_hash, :created_at FROM cred
    WHERE cred.revoked_at IS NULL AND (cred.expires_at IS NULL OR cred.expires_at > :created_at)
    ON CONFLICT (principal, key) DO NOTHING
    RETURNING id
)
SELECT cred.*, (SELECT id FROM reserved) AS reserved FROM cred
""")
_EXISTING = sa.text("""
SELECT id, principal, key, request_hash, status_code, content_type, location, body, created_at
FROM idempotency_records WHERE principal = :principal AND key = :key
""").columns(created_at=sa.DateTime(timezone=True), body=sa.LargeBinary)
_TAKE_OVER = sa.text("""
UPDATE idempotency_records SET created_at = :now
WHERE id = :id AND created_at = :created_at AND status_code IS NULL
RETURNING id
""")
_FORGET_ID = sa.text("DELETE FROM idempotency_records WHERE id = :id AND status_code IS NULL")
_FORGET = sa.text("DELETE FROM idempotency_records WHERE principal = :principal AND key = :key")
_RECORD = sa.text("""
UPDATE idempotency_records SET status_code = :status_code, content_type = :content_type,
    location = :location, body = :body
WHERE principal = :principal AND key = :key
""").bindparams(sa.bindparam("body", type_=sa.LargeBinary))


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.body, status=record.status_code, content_type=record.content_type)
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def applies() -> bool:
    """Whether this request's Idempotency-Key is honoured: POSTs to a view, but for views marked
    route_facts.ignores_idempotency_key. A POST routed nowhere creates nothing (it is a 404 or a
    405 every time), so nothing is recorded for it."""
    return (request.method == "POST" and request.endpoint is not None
            and route_facts.IGNORES_IDEMPOTENCY_KEY not in route_facts.of_request())


def before_request():
    key = request.headers.get(HEADER)
    if key is None or not applies():
        return None
    if not request.headers.get("Authorization"):
        return None  # the route will answer 401
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput.field(HEADER, f"Must be 1 to {MAX_KEY_LENGTH} characters.")
    now = utcnow()
    if "principal" not in g and request.mimetype != "multipart/form-data":
        # The caller looked up in the reservation's own statement (one round trip, not two). An
        # upload keeps the two steps, so no file is hashed for a caller who is not let in.
        fingerprint = _fingerprint()
        record_id = new_id("idem")
        try:
            rows = direct.write(_AUTHENTICATE_AND_RESERVE, {
                "secret_hash": hash_secret(bearer_secret()), "id": record_id, "key": key,
                "request_hash": fingerprint, "created_at": now}, durable=False)
        except (sa.exc.DBAPIError, psycopg.Error):
            # The reservation may have committed before the connection failed, and nothing else
            # of this request has run: let it go (by its own new id), so a retry runs for real
            # rather than hearing "still being processed" until ABANDONED_AFTER.
            _forget_reservation(record_id)
            raise
        g.principal = principal = principal_from(rows[0] if rows else None, now)
        scope = f"{principal.role}:{principal.id}"
        if rows[0]["reserved"] is not None:
            g.idempotency = (scope, key)
            return None
    else:
        principal = authenticated_principal()
        scope = f"{principal.role}:{principal.id}"
        fingerprint = _fingerprint()
        # Not durable by itself (the fast pool, synchronous_commit off), and it need not be: every
        # later commit of this request (the view's work, the response recorded below) is durable and
        # flushes the log past this row, so the row can be lost in a crash only with all the request
        # did, when a retry must run for real anyway. (The same holds for _AUTHENTICATE_AND_RESERVE.)
        if _reserve(scope, key, fingerprint, now):
            return None
    found = direct.read(_EXISTING, {"principal": scope, "key": key})
    if not found:
        # The request holding the key ended between the two statements and let it go (a 5xx or a
        # 429 forgets its record): reserve it again rather than read a row that is gone.
        if _reserve(scope, key, fingerprint, now):
            return None
        found = direct.read(_EXISTING, {"principal": scope, "key": key})
        if not found:
            raise Conflict(f"A request with this {HEADER} is still being processed; retry shortly.",
                           headers={"Retry-After": "1"})
    row = IdempotencyRecord(**found[0])
    if row.request_hash != fingerprint:
        raise Conflict(f"This {HEADER} was used with a different request; use a new key.",
                       errors={HEADER: ["Already used with a different request."]})
    if row.status_code is not None:
        return _replay(row)
    if as_utc(row.created_at) > now - ABANDONED_AFTER:
        raise Conflict(f"A request with this {HEADER} is still being processed; retry shortly.",
                       headers={"Retry-After": "1"})
    taken = direct.write(_TAKE_OVER, {"id": row.id, "created_at": row.created_at, "now": now})
    if not taken:
        raise Conflict(f"A request with this {HEADER} is still being processed; retry shortly.",
                       headers={"Retry-After": "1"})
    g.idempotency = (scope, key)
    return None


def _reserve(scope: str, key: str, fingerprint: str, now) -> bool:
    """Reserve the key for this request (the caller already known): True, and noted on `g`, when
    no record held it."""
    if direct.write(_RESERVE, {"id": new_id("idem"), "principal": scope, "key": key, "request_hash": fingerprint,
                               "created_at": now}, durable=False):
        g.idempotency = (scope, key)
        return True
    return False


def _forget_reservation(record_id: str) -> None:
    try:
        direct.write(_FORGET_ID, {"id": record_id})
    except (sa.exc.DBAPIError, psycopg.Error):
        pass  # the database is gone for now; the record is taken over after ABANDONED_AFTER


def derived_id(prefix: str) -> str | None:
    """For a creating request with an Idempotency-Key: an id for what it creates that is the same
    on every retry of it (so a retry after an answer that was lost finds the first try's row);
    None without a key. Another caller's same key gives another id."""
    claimed = g.get("idempotency")
    if claimed is None:
        return None
    scope, key = claimed
    return f"{prefix}_" + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()[:32]


def recording(response: Response) -> list[tuple[sa.Executable, dict]]:
    """The statement that records `response` under this request's Idempotency-Key, for the
    caller's own transaction (none without a key): a view whose work and answer commit together
    (the claim) leaves no moment when the work is done and a retry would not hear of it. Once
    that transaction commits, `recorded(response)` says so, and the hook below leaves it."""
    claimed = g.get("idempotency")
    if claimed is None:
        return []
    scope, key = claimed
    return [(_RECORD, _record_values(scope, key, response))]


def recorded(response: Response) -> None:
    """`response` was recorded by the view's own committed transaction (see `recording`)."""
    if g.get("idempotency") is not None:
        g.idempotency_recorded = response


def _record_values(scope: str, key: str, response: Response) -> dict:
    return {"principal": scope, "key": key, "status_code": response.status_code,
            "content_type": response.content_type, "location": response.headers.get("Location"),
            "body": response.get_data()}


def after_request(response: Response) -> Response:
    claimed = g.pop("idempotency", None)
    if claimed is None:
        return response
    if g.pop("idempotency_recorded", None) is response:
        return response  # recorded in the view's own transaction, with the work it answers for
    scope, key = claimed
    if response.status_code >= 500 or response.status_code == 429 or (
            response.status_code == 409 and response.headers.get("Retry-After")):
        # Failed on our side or "not now": a retry with the same key must run for real.
        direct.write(_FORGET, {"principal": scope, "key": key})
    else:
        direct.write(_RECORD, _record_values(scope, key, response))
    return response


def forget_older_than(age: timedelta = KEPT_FOR) -> int:
    table = IdempotencyRecord.__table__
    with _own_transaction() as conn:
        return conn.execute(sa.delete(table).where(table.c.created_at < utcnow() - age)).rowcount


def register(app: Flask) -> None:
    app.before_request(before_request)
    app.after_request(after_request)
