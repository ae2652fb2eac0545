"""Tables for the three kinds of principal and the hashed secrets they sign in with."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db

ROLES = ("brand", "worker", "admin")


class Brand(db.Model):
    __tablename__ = "brands"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("brand"))
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Worker(db.Model):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("wrk"))
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    country: Mapped[str] = mapped_column(sa.String(2))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Admin(db.Model):
    __tablename__ = "admins"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("adm"))
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Credential(db.Model):
    """An API key (brands, admins) or a login token (workers), stored only as its SHA-256.

    Secrets are 256-bit random strings, so a fast hash is enough: there is nothing to
    brute-force, and one indexed lookup per request keeps authentication cheap.
    """

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # api_key | token
    role: Mapped[str] = mapped_column(sa.String(16))
    principal_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    hint: Mapped[str] = mapped_column(sa.String(16))  # the last characters, to tell keys apart
    # A brand's key: its name, the visible start of its secret (mk_ and 8 random characters, not
    # secret: it names the key in lists and logs), and what it may do. NULL scopes: the role's full
    # rights (worker tokens, admin keys). Keys made before scopes have no visible prefix.
    name: Mapped[str | None] = mapped_column(sa.String(100))
    prefix: Mapped[str | None] = mapped_column(sa.String(16))
    scopes: Mapped[str | None] = mapped_column(sa.String(200))  # space-separated, as OAuth writes them
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A rolled key: the id of the key that replaced it. A key rolls once; its successor rolls next.
    rolled_to: Mapped[str | None] = mapped_column(sa.String(40))

    @property
    def scope_list(self) -> list[str] | None:
        return self.scopes.split() if self.scopes is not None else None

    __table_args__ = (
        sa.CheckConstraint("role IN ('brand', 'worker', 'admin')", name="role_known"),
        sa.CheckConstraint("kind IN ('api_key', 'token')", name="kind_known"),
    )
