"""Sign-up, login and the lookup of a bearer secret into the principal behind it."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy.exc import IntegrityError

from marketplace.auth.models import Admin, Brand, Credential, Worker
from marketplace.db import direct
from marketplace.db.clock import as_utc, utcnow
from marketplace.db.ids import new_id
from marketplace.errors import Conflict, Forbidden, NotFound, Unauthorized
from marketplace.extensions import db
from marketplace.http.pagination import page

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

SECRET_PREFIX = {"api_key": "mk_", "token": "mt_"}

# What a brand's API key may be allowed to do; the key made at sign-up may do all of it.
BRAND_SCOPES = ("briefs:read", "briefs:write", "review:write", "conversions:write", "webhooks:write", "keys:write")
MAX_KEY_HOURS = 24 * 366


@dataclass(frozen=True)
class Principal:
    role: str
    id: str
    # What the key may do; None is the role's full rights (worker tokens, admin keys, the console).
    scopes: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _issue(kind: str, role: str, principal_id: str, expires_in: timedelta | None = None, *,
           name: str | None = None, scopes: Sequence[str] | None = None):
    # mk_1f2e3d4c_…: the start (its visible prefix) names the key in lists and logs, like Stripe's
    # and GitHub's; only the whole secret's hash is kept.
    prefix = SECRET_PREFIX[kind] + secrets.token_hex(4)
    secret = prefix + "_" + secrets.token_urlsafe(32)
    credential = Credential(
        id=new_id("key" if kind == "api_key" else "tok"),
        secret_hash=hash_secret(secret),
        kind=kind,
        role=role,
        principal_id=principal_id,
        hint=secret[-4:],
        name=name,
        prefix=prefix,
        scopes=" ".join(s for s in BRAND_SCOPES if s in scopes) if scopes is not None else None,
        expires_at=(utcnow() + expires_in) if expires_in is not None else None,
    )
    db.session.add(credential)
    return secret, credential


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def _insert_unique(obj, what: str) -> None:
    """Add obj, turning a unique-email race into a 409 instead of a 500."""
    try:
        with db.session.begin_nested():
            db.session.add(obj)
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A {what} with that email already exists.") from exc


def sign_up_brand(name: str, email: str) -> tuple[Brand, str]:
    email = _normalise_email(email)
    if db.session.scalar(sa.select(Brand.id).where(Brand.email == email)):
        raise Conflict("A brand with that email already exists.")
    brand = Brand(name=name.strip(), email=email)
    _insert_unique(brand, "brand")
    api_key, _ = _issue("api_key", "brand", brand.id, name="Sign-up key", scopes=BRAND_SCOPES)
    db.session.commit()
    return brand, api_key


def sign_up_worker(email: str, password: str, display_name: str, country: str,
                   seen_from: tuple[str | None, str | None] | None = None) -> Worker:
    """`seen_from`: the client's (address, user agent), recorded as a keyed device sighting."""
    email = _normalise_email(email)
    if db.session.scalar(sa.select(Worker.id).where(Worker.email == email)):
        raise Conflict("A worker with that email already exists.")
    worker = Worker(
        email=email,
        password_hash=_hasher.hash(password),
        display_name=display_name.strip(),
        country=country.upper(),
    )
    _insert_unique(worker, "worker")
    _seen(worker.id, "sign_up", seen_from)
    db.session.commit()
    return worker


def _seen(worker_id: str, event: str, seen_from: tuple[str | None, str | None] | None) -> None:
    if seen_from is not None:
        # workforce owns the sightings, and builds on auth: imported here, not at the top
        from marketplace.workforce import sightings

        sightings.seen(worker_id, event, *seen_from)


def update_worker_identity(worker_id: str, *, display_name: str | None = None, country: str | None = None) -> None:
    """A worker's name and country as their profile sets them (None: unchanged), in the caller's transaction."""
    values = {k: v for k, v in (("display_name", display_name and display_name.strip()), ("country", country))
              if v is not None}
    if values:
        db.session.execute(sa.update(Worker).where(Worker.id == worker_id).values(**values))


def log_in_worker(email: str, password: str,
                  seen_from: tuple[str | None, str | None] | None = None) -> tuple[str, Credential]:
    worker = db.session.scalar(sa.select(Worker).where(Worker.email == _normalise_email(email)))
    try:
        _hasher.verify(worker.password_hash if worker else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        worker = None
    if worker is None:
        raise Unauthorized("Email or password is wrong.")
    # workforce owns suspensions, and builds on auth: imported here, not at the top
    from marketplace.workforce import suspensions

    suspensions.refuse_if_suspended(worker.id)
    if _hasher.check_needs_rehash(worker.password_hash):
        worker.password_hash = _hasher.hash(password)
    ttl = timedelta(hours=current_app.config["WORKER_TOKEN_TTL_HOURS"])
    token, credential = _issue("token", "worker", worker.id, ttl)
    _seen(worker.id, "login", seen_from)
    db.session.commit()
    return token, credential


def create_admin(email: str) -> tuple[Admin, str]:
    email = _normalise_email(email)
    admin = db.session.scalar(sa.select(Admin).where(Admin.email == email))
    if admin is None:
        admin = Admin(email=email)
        db.session.add(admin)
        db.session.flush()
    api_key, _ = _issue("api_key", "admin", admin.id)
    db.session.commit()
    return admin, api_key


# The columns `principal_from` needs, for the credential behind a secret's hash: a statement of its
# own, and the first step of the hot reads that authenticate in the same round trip.
CREDENTIAL_CHECK = """
SELECT id AS credential_id, role, principal_id, revoked_at, expires_at, scopes, last_used_at FROM credentials
WHERE secret_hash = :secret_hash
"""
_AUTHENTICATE = sa.text(CREDENTIAL_CHECK).columns(
    revoked_at=sa.DateTime(timezone=True), expires_at=sa.DateTime(timezone=True),
    last_used_at=sa.DateTime(timezone=True),
)

# last_used_at is for people ("is this key still in use?"), so a minute's precision is plenty:
# a credential's row is written at most once a minute however busy the key, and the hot reads
# stay one statement on every other request. The condition is in the UPDATE too, so requests
# racing past a stale value write once (the second re-reads the row the first wrote, and skips).
LAST_USED_PRECISION = timedelta(minutes=1)
_NOTE_USE = sa.text("""
UPDATE credentials SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :stale_before)
""")


def _note_use(credential: Mapping[str, Any], now: datetime) -> None:
    last_used_at = as_utc(credential.get("last_used_at"))
    if "credential_id" not in credential or (last_used_at is not None and last_used_at >= now - LAST_USED_PRECISION):
        return
    # The fast pool: a last-use time lost to a crash in the same instant costs nothing; a repeat is harmless.
    direct.write(_NOTE_USE, {"id": credential["credential_id"], "now": now, "stale_before": now - LAST_USED_PRECISION},
                 durable=False, retry=True)


def principal_from(credential: Mapping[str, Any] | None, now: datetime | None = None) -> Principal:
    """The caller, from a row of `CREDENTIAL_CHECK` (None if no credential matched), or 401.

    `now` is the instant a statement that also acted on the credential judged its expiry by."""
    if credential is None or credential["revoked_at"] is not None:
        raise Unauthorized("The credentials are not valid.")
    expires_at = as_utc(credential["expires_at"])
    if expires_at is not None and expires_at <= (now or utcnow()):
        raise Unauthorized("The token has expired; log in again.")
    _note_use(credential, now or utcnow())
    scopes = credential.get("scopes")
    return Principal(role=credential["role"], id=credential["principal_id"],
                     scopes=frozenset(scopes.split()) if scopes is not None else None)


def authenticate(secret: str) -> Principal:
    """One autocommit round trip: the request's own transaction is not opened just to authenticate."""
    rows = direct.read(_AUTHENTICATE, {"secret_hash": hash_secret(secret)})
    return principal_from(rows[0] if rows else None)


def describe(principal: Principal) -> dict:
    model = {"brand": Brand, "worker": Worker, "admin": Admin}[principal.role]
    obj = db.session.get(model, principal.id)
    return {"role": principal.role, principal.role: obj}


def worker_contacts(worker_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Each worker's (email, display name), for whoever writes to them (notifications' e-mail)."""
    if not worker_ids:
        return {}
    rows = db.session.execute(sa.select(Worker.id, Worker.email, Worker.display_name).where(Worker.id.in_(worker_ids)))
    return {row.id: (row.email, row.display_name) for row in rows}


# --- a brand's API keys -----------------------------------------------------------------------------

def require_scope(principal: Principal, scope: str) -> Principal:
    """403 naming the scope when the caller's key was made without it; full-rights callers pass."""
    if principal.scopes is not None and scope not in principal.scopes:
        raise Forbidden(f"This API key lacks the {scope} scope.", errors={"scope": [f"Missing {scope}."]})
    return principal


def _keys_of(principal: Principal) -> sa.Select:
    return sa.select(Credential).where(Credential.kind == "api_key", Credential.role == "brand",
                                       Credential.principal_id == principal.id, Credential.revoked_at.is_(None))


def create_api_key(principal: Principal, name: str, scopes: Sequence[str],
                   expires_in_hours: int | None = None) -> tuple[str, Credential]:
    """A new key for the caller's brand; its secret is returned this once. A key grants only scopes
    its maker has (403 naming the first it lacks): keys:write alone must not mint a key for all."""
    for scope in scopes:
        require_scope(principal, scope)
    expires_in = timedelta(hours=expires_in_hours) if expires_in_hours is not None else None
    secret, credential = _issue("api_key", "brand", principal.id, expires_in, name=name.strip(), scopes=scopes)
    db.session.commit()
    return secret, credential


def list_api_keys(principal: Principal, *, limit: int, cursor: str | None):
    """The brand's keys not revoked (expired ones too, until someone revokes them), newest first."""
    return page(_keys_of(principal), Credential, limit=limit, cursor=cursor)


def _own_key(principal: Principal, key_id: str, *, lock: bool = True) -> Credential:
    query = _keys_of(principal).where(Credential.id == key_id)
    key = db.session.scalar(query.with_for_update() if lock else query)
    if key is None:  # another brand's key, or revoked already: nothing of the caller's
        raise NotFound(f"No API key {key_id}.")
    return key


def revoke_api_key(principal: Principal, key_id: str) -> None:
    """Revoked at once: authentication reads revoked_at on every request, no cache to outlive."""
    _own_key(principal, key_id).revoked_at = utcnow()
    db.session.commit()


def roll_api_key(principal: Principal, key_id: str, expires_in_hours: int) -> tuple[str, Credential]:
    """A new key with the old one's name and scopes; the old one works `expires_in_hours` more (0:
    not at all), never longer than it would have. A key rolls once (409 after, naming its
    successor): the row lock makes two rolls at once roll in turn, and the second finds the key
    rolled, so a double tap makes one new key, not two live ones the caller may have lost one of."""
    # Refused before the row is locked: a refusal leaves no lock behind in the request's session.
    for scope in _own_key(principal, key_id, lock=False).scope_list or BRAND_SCOPES:
        require_scope(principal, scope)  # the new secret is handed to the caller: no more than it has
    old = _own_key(principal, key_id)
    db.session.refresh(old)  # the values as locked, not those the first read left in the session
    if old.rolled_to is not None:
        db.session.rollback()
        raise Conflict(f"API key {key_id} was rolled already, to {old.rolled_to}: roll that key instead.")
    now = utcnow()
    ends = now + timedelta(hours=expires_in_hours)
    if old.expires_at is None or as_utc(old.expires_at) > ends:
        old.expires_at = ends
    secret, new = _issue("api_key", "brand", principal.id, name=old.name,
                         scopes=old.scopes.split() if old.scopes is not None else BRAND_SCOPES)
    old.rolled_to = new.id
    db.session.commit()
    return secret, new
