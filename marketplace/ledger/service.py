"""Posting balanced entries and reading balances as sums over ledger lines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa

from marketplace.db.arrays import among
from marketplace.db.clock import utcnow
from marketplace.db.ids import new_id
from marketplace.db.upsert import upsert_insert
from marketplace.errors import Conflict
from marketplace.extensions import db
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerLine

try:  # COPY goes straight to the driver, so its errors arrive unwrapped by SQLAlchemy
    from psycopg import IntegrityError as _DriverIntegrityError
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs lack it
    class _DriverIntegrityError(Exception):
        pass


class UnbalancedEntry(ValueError):
    """A programming error: an entry whose lines do not sum to zero."""


class InsufficientFunds(Conflict):
    slug = "insufficient-funds"


class AlreadyPosted(Conflict):
    """The (kind, ref_id) pair has been booked before: the event is a replay."""

    slug = "already-posted"


@dataclass(frozen=True)
class Account:
    code: str
    kind: str
    owner_id: str | None
    currency: str
    normal: str  # "credit" for what we owe, "debit" for what we hold
    # Whether a posting that lowers it must lock it and check it stays at or above zero. Off only
    # where that follows from the others: see stripe_clearing.
    guarded: bool = True

    @property
    def sign(self) -> int:
        """Multiply a line sum by this to get the account's balance."""
        return -1 if self.normal == "credit" else 1


def escrow_code(brief_id: str) -> str:
    return f"escrow:{brief_id}"


def escrow(brief_id: str, currency: str) -> Account:
    return Account(escrow_code(brief_id), "escrow", brief_id, currency, "credit")


def worker_available(worker_id: str, currency: str) -> Account:
    return Account(f"worker:{worker_id}:available:{currency}", "worker_available", worker_id, currency, "credit")


def worker_in_transit(worker_id: str, currency: str) -> Account:
    return Account(f"worker:{worker_id}:in_transit:{currency}", "worker_in_transit", worker_id, currency, "credit")


def worker_held(worker_id: str, currency: str) -> Account:
    """A suspended worker's balance, set aside from available so no payout batch pays it, and given
    back to available when they are reinstated: owed to them all along, never lost."""
    return Account(f"worker:{worker_id}:held:{currency}", "worker_held", worker_id, currency, "credit")


def refund_pending(brief_id: str, currency: str) -> Account:
    """Escrow set aside for a refund Stripe has not confirmed yet."""
    return Account(f"refund_pending:{brief_id}", "refund_pending", brief_id, currency, "credit")


def platform_fees(currency: str) -> Account:
    return Account(f"platform:fees:{currency}", "platform_fees", None, currency, "credit")


def stripe_clearing(currency: str) -> Account:
    """Our cash at Stripe: what Stripe's balance holds for us (available and pending). Unguarded:
    by double entry it equals what we owe (escrows, worker balances, fees, refunds pending, each
    guarded) less Stripe's fees, and may go below zero as Stripe's balance itself does, when a
    refund gives a brand back money whose fee Stripe kept (Stripe then debits the platform's
    bank). Guarding it would lock one row per currency for every payout group and refund in the
    platform, and sum its every line each time, to refuse what Stripe itself allows."""
    return Account(f"stripe:clearing:{currency}", "stripe_clearing", None, currency, "debit", guarded=False)


def stripe_fees(currency: str) -> Account:
    """What Stripe's fees have cost us: an expense, booked from each charge's balance transaction."""
    return Account(f"stripe:fees:{currency}", "stripe_fees", None, currency, "debit")


def _insert_ignoring_conflicts(table, rows: list[dict], index_elements: list[str]):
    return upsert_insert(table).values(rows).on_conflict_do_nothing(index_elements=index_elements)


def ensure_accounts(accounts: Iterable[Account]) -> dict[str, str]:
    """Account code → row id, creating the rows that do not exist yet (race-safe)."""
    wanted = {a.code: a for a in accounts}
    if not wanted:
        return {}
    found = dict(db.session.execute(
        sa.select(LedgerAccount.code, LedgerAccount.id).where(among(LedgerAccount.code, list(wanted)))
    ).all())
    # Only the missing rows are inserted (a bulk approval's thousand workers mostly exist already),
    # and in code order, so two transactions creating overlapping accounts never wait on each other
    # in a cycle.
    missing = sorted(code for code in wanted if code not in found)
    if missing:
        rows = [
            {"id": new_id("led"), "code": a.code, "kind": a.kind, "owner_id": a.owner_id,
             "currency": a.currency, "normal": a.normal}
            for a in (wanted[code] for code in missing)
        ]
        db.session.execute(_insert_ignoring_conflicts(LedgerAccount.__table__, rows, ["code"]))
        found.update(db.session.execute(
            sa.select(LedgerAccount.code, LedgerAccount.id).where(among(LedgerAccount.code, missing))
        ).all())
    return found



def _lock(account_ids: Sequence[str]) -> None:
    """Row locks in a fixed order, so two posters never deadlock."""
    if account_ids:
        db.session.execute(
            sa.select(LedgerAccount.id)
            .where(LedgerAccount.id.in_(sorted(account_ids)))
            .order_by(LedgerAccount.id)
            .with_for_update()
        ).all()


def _line_sums(account_ids: Sequence[str]) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(LedgerLine.account_id, sa.func.coalesce(sa.func.sum(LedgerLine.amount_cents), 0))
        .where(LedgerLine.account_id.in_(list(account_ids)))
        .group_by(LedgerLine.account_id)
    )
    return {account_id: int(total) for account_id, total in rows}


def post(kind: str, ref_id: str, lines: Sequence[tuple[Account, int]], memo: str | None = None) -> None:
    """Book one balanced entry in the caller's transaction (post_many of one; zero lines dropped).

    Amounts are signed (positive debits, negative credits) and must sum to zero. Accounts
    whose balance the entry lowers are locked and checked first: an entry that would take
    any account below zero raises InsufficientFunds and writes nothing.
    """
    nonzero = tuple((account, int(amount)) for account, amount in lines if amount != 0)
    post_many([Posting(kind, ref_id, nonzero, memo)])


def balance(account: Account) -> int:
    return balances([account])[account.code]


def balances(accounts: Iterable[Account]) -> dict[str, int]:
    """Account code → balance, 0 for accounts that have never been posted to."""
    accounts = list(accounts)
    rows = db.session.execute(
        sa.select(LedgerAccount.code, sa.func.coalesce(sa.func.sum(LedgerLine.amount_cents), 0))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.in_([a.code for a in accounts]))
        .group_by(LedgerAccount.code)
    )
    sums = dict(rows.all())
    return {a.code: int(sums.get(a.code, 0)) * a.sign for a in accounts}


class Posting(NamedTuple):
    """One balanced entry to book: (kind, ref_id) names it once. A tuple, not a dataclass: a bulk
    approval makes ten thousand of them (a frozen dataclass costs five times as much to build)."""

    kind: str
    ref_id: str
    lines: tuple[tuple[Account, int], ...]
    memo: str | None = None


def locked_balances(accounts: Iterable[Account]) -> dict[str, int]:
    """Lock these accounts (fixed order) and read their balances, for a caller deciding how much
    of a bulk operation they can cover before it posts. The locks last until its commit."""
    accounts = list({a.code: a for a in accounts}.values())
    ids = ensure_accounts(accounts)
    _lock(list(ids.values()))
    sums = _line_sums(list(ids.values()))
    return {a.code: sums.get(ids[a.code], 0) * a.sign for a in accounts}


def post_many(postings: Sequence[Posting], *, locked: Mapping[str, int] | None = None) -> int:
    """Book many balanced entries in a fixed number of statements, whatever their number.

    The rules of every posting: each entry balances, (kind, ref_id) is new (a replayed one
    raises AlreadyPosted, written nothing), and no account the batch lowers goes below zero.
    `locked` is what `locked_balances` returned earlier in this same transaction: those accounts
    are locked and their balances current, so they are not locked and summed a second time.
    """
    if not postings:
        return 0
    # One pass over every line: the rules, and each account's net change (keyed by code, not by
    # Account, whose hash is dear: a bulk approval has 30,000 lines over a thousand accounts).
    accounts: dict[str, Account] = {}
    delta: dict[str, int] = defaultdict(int)
    for p in postings:
        total, currency = 0, None
        for account, amount in p.lines:
            if amount == 0 or (currency is not None and account.currency != currency):
                raise UnbalancedEntry(f"{p.kind} {p.ref_id}: lines must be non-zero, in one currency")
            currency = account.currency
            total += amount
            code = account.code
            if code not in accounts:
                accounts[code] = account
            delta[code] += amount
        if total != 0 or not p.lines:
            raise UnbalancedEntry(f"{p.kind} {p.ref_id}: lines must be non-zero and sum to zero")
    ids = ensure_accounts(accounts.values())
    lowered = [accounts[code] for code, d in delta.items() if d * accounts[code].sign < 0 and accounts[code].guarded]
    held = {a.code: locked[a.code] for a in lowered if locked is not None and a.code in locked}
    unread = [a for a in lowered if a.code not in held]
    if unread:
        _lock([ids[a.code] for a in unread])
        sums = _line_sums([ids[a.code] for a in unread])
        held.update({a.code: sums.get(ids[a.code], 0) * a.sign for a in unread})
    short = [a for a in lowered if held[a.code] + delta[a.code] * a.sign < 0]
    if short:
        raise InsufficientFunds("; ".join(
            f"{a.code} holds {held[a.code]} cents, {-delta[a.code] * a.sign} needed" for a in short[:5]))

    entry_ids = [new_id("ent") for _ in postings]
    now = utcnow()
    try:
        with db.session.begin_nested():
            _insert_rows(LedgerEntry, ("id", "kind", "ref_id", "memo", "created_at"), [
                (eid, p.kind, p.ref_id, p.memo, now) for eid, p in zip(entry_ids, postings, strict=True)
            ])
    except (sa.exc.IntegrityError, _DriverIntegrityError) as exc:
        raise AlreadyPosted("One of these entries is already booked.") from exc
    _insert_rows(LedgerLine, ("entry_id", "account_id", "amount_cents"), [
        (eid, ids[account.code], amount)
        for eid, p in zip(entry_ids, postings, strict=True)
        for account, amount in p.lines
    ])
    return len(postings)


def _insert_rows(model, names: Sequence[str], rows: list[tuple]) -> None:
    """Many rows (tuples in the order of `names`) in one round trip, in the caller's transaction.

    On PostgreSQL this is a binary COPY … FROM STDIN: no statement to parse per row, no parameter
    arrays to quote and no text to parse back, which is most of what a bulk approval's 30,000
    lines cost as an INSERT. COPY enforces the same constraints and triggers as INSERT.
    Elsewhere, an executemany.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(sa.insert(model), [dict(zip(names, row, strict=True)) for row in rows])
        return
    columns = ", ".join(f'"{name}"' for name in names)
    types = [_COPY_TYPES[type(model.__table__.c[name].type)] for name in names]
    driver = db.session.connection().connection.driver_connection
    statement = f'COPY "{model.__tablename__}" ({columns}) FROM STDIN (FORMAT BINARY)'
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


# What each column type is sent as in a binary COPY (varchar's wire format is text's).
_COPY_TYPES = {sa.String: "text", sa.BigInteger: "int8", sa.Integer: "int4", sa.DateTime: "timestamptz"}
