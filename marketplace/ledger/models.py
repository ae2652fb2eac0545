"""Double-entry tables: accounts, entries, and the signed lines that make each entry balance."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.extensions import db


class LedgerAccount(db.Model):
    """A place money can be. Its balance is always the sum of its lines, never a stored number.

    Lines are signed: positive is a debit, negative a credit. A credit-normal account
    (what we owe: escrow, worker balances, fee revenue) has balance = -sum(lines); a
    debit-normal one (what we hold: cash at Stripe) has balance = sum(lines).
    """

    __tablename__ = "ledger_accounts"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("led"))
    code: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    owner_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    normal: Mapped[str] = mapped_column(sa.String(6))  # debit | credit
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    __table_args__ = (sa.CheckConstraint("normal IN ('debit', 'credit')", name="normal_side"),)


class LedgerEntry(db.Model):
    """One movement of money. (kind, ref_id) is unique: the same event cannot be booked twice."""

    __tablename__ = "ledger_entries"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("ent"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    ref_id: Mapped[str] = mapped_column(sa.String(80))
    memo: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (sa.UniqueConstraint("kind", "ref_id", name="uq_ledger_entries_kind_ref"),)


class LedgerLine(db.Model):
    """One signed amount of an entry on an account.

    entry_id and account_id refer to ledger_entries and ledger_accounts. On PostgreSQL a
    statement-level trigger checks both references for a whole batch of lines at once, and that
    every entry the statement wrote balances; ledger rows are append-only (migration 0004).
    """

    __tablename__ = "ledger_lines"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.CheckConstraint("amount_cents <> 0", name="nonzero"),
        # Balances are sums per account: this index answers them from the index alone.
        sa.Index("ix_ledger_lines_account_amount", "account_id", "amount_cents"),
    )
