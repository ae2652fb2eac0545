"""The ledger as other domains read it: balances, escrow figures, fragments for one-statement reads.

The sign rule lives here and in service.py only: lines are positive debits and negative credits,
and a credit-normal account's balance is minus the sum of its lines. Callers get balances and
movements as the account sees them (money it gained is +), never raw line sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerLine

# Each kind of account is on one side, as service.py's constructors make it.
_SIGN = {a.kind: a.sign for a in (
    ledger.escrow("", ""), ledger.worker_available("", ""), ledger.worker_in_transit("", ""), ledger.worker_held("", ""),
    ledger.refund_pending("", ""), ledger.platform_fees(""), ledger.stripe_clearing(""), ledger.stripe_fees(""),
)}


def _as_balance(kind: str, line_amounts: sa.ColumnElement) -> sa.ColumnElement:
    """Line amounts (or their sum) as a change to the balance of an account of this kind."""
    return -line_amounts if _SIGN[kind] < 0 else line_amounts


# --- escrow -----------------------------------------------------------------------------------------


def escrow_movements(brief_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """brief id → what moved through its escrow, by entry kind (credits +), for many briefs in one query."""
    codes = {ledger.escrow_code(brief_id): brief_id for brief_id in brief_ids}
    rows = db.session.execute(
        sa.select(LedgerAccount.code, LedgerEntry.kind, _as_balance("escrow", sa.func.sum(LedgerLine.amount_cents)))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
        .where(LedgerAccount.code.in_(list(codes)))
        .group_by(LedgerAccount.code, LedgerEntry.kind)
    )
    moved: dict[str, dict[str, int]] = defaultdict(dict)
    for code, kind, total in rows:
        moved[codes[code]][kind] = int(total)
    return moved


def escrow_movements_sql(columns: Mapping[str, Sequence[str]], *, total: str) -> str:
    """Portable SQL for one row of what moved through the escrow whose code is bound as
    `:escrow_code` (credits +): a column per name in `columns` summing its entry kinds, and
    `total` over every kind. All NULL for an escrow never posted to. For a statement that reads
    a brief's money together with the rest of it."""
    sign = "-" if _SIGN["escrow"] < 0 else ""

    def kind_is(kinds: Sequence[str]) -> str:
        quoted = [f"""'{k.replace("'", "''")}'""" for k in kinds]
        return f"e.kind = {quoted[0]}" if len(quoted) == 1 else f"e.kind IN ({', '.join(quoted)})"

    sums = [f"{sign}sum(CASE WHEN {kind_is(kinds)} THEN l.amount_cents ELSE 0 END) AS {name}"
            for name, kinds in columns.items()]
    selected = ",\n        ".join([*sums, f"{sign}sum(l.amount_cents) AS {total}"])
    return f"""
    SELECT
        {selected}
    FROM ledger_lines l
    JOIN ledger_entries e ON e.id = l.entry_id
    WHERE l.account_id = (SELECT a.id FROM ledger_accounts a WHERE a.code = :escrow_code)
"""


def held_escrow_owners(among: sa.Select) -> list[str]:
    """The owners (brief ids) among `among`, a select of brief ids, whose escrow still holds money:
    one statement."""
    return list(db.session.scalars(
        sa.select(LedgerAccount.owner_id)
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == "escrow", LedgerAccount.owner_id.in_(among))
        .group_by(LedgerAccount.owner_id)
        .having(_as_balance("escrow", sa.func.sum(LedgerLine.amount_cents)) > 0)
    ))


# --- balances and movements, as subqueries for a caller's statement --------------------------------


def balances_of_kind(kind: str, currency: str, *, at_least: int) -> sa.Subquery:
    """(owner_id, balance_cents) of every account of this kind and currency holding at least
    `at_least` cents, to join in a set-based statement (a payout batch's INSERT … SELECT)."""
    balance = _as_balance(kind, sa.func.sum(LedgerLine.amount_cents))
    return (
        sa.select(LedgerAccount.owner_id, balance.label("balance_cents"))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == kind, LedgerAccount.currency == currency)
        .group_by(LedgerAccount.owner_id)
        .having(balance >= at_least)
        .subquery("balances")
    )


def balance_changes(entry_kind: str, account_kind: str) -> sa.Subquery:
    """(ref_id, cents): what each entry of `entry_kind` did to the balance of the accounts of
    `account_kind` it touched, one row per line, to join and sum in a caller's statement."""
    return (
        sa.select(LedgerEntry.ref_id, _as_balance(account_kind, LedgerLine.amount_cents).label("cents"))
        .join(LedgerLine, LedgerLine.entry_id == LedgerEntry.id)
        .join(LedgerAccount, sa.and_(LedgerAccount.id == LedgerLine.account_id, LedgerAccount.kind == account_kind))
        .where(LedgerEntry.kind == entry_kind)
        .subquery(f"{entry_kind}_changes")
    )


def entry_debits(entry_kind: str) -> sa.Subquery:
    """(ref_id, created_at, cents): the debit lines of the entries of `entry_kind`, whichever
    accounts they debit, to join in a caller's statement (an approval's debit is what it cost)."""
    return (
        sa.select(LedgerEntry.ref_id, LedgerEntry.created_at, LedgerLine.amount_cents.label("cents"))
        .join(LedgerLine, sa.and_(LedgerLine.entry_id == LedgerEntry.id, LedgerLine.amount_cents > 0))
        .where(LedgerEntry.kind == entry_kind)
        .subquery(f"{entry_kind}_debits")
    )


# --- reconciliation --------------------------------------------------------------------------------


def kind_balances(kind: str) -> dict[str, int]:
    """currency → the balance of all accounts of this kind together (cash at Stripe, say)."""
    rows = db.session.execute(
        sa.select(LedgerAccount.currency, _as_balance(kind, sa.func.sum(LedgerLine.amount_cents)))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == kind)
        .group_by(LedgerAccount.currency)
    )
    return {currency: int(total) for currency, total in rows}


def changes_by_ref(entry_kind: str, account_kind: str) -> dict[str, int]:
    """ref_id → what the entries of `entry_kind` did to the accounts of `account_kind` (as balances)."""
    changes = balance_changes(entry_kind, account_kind)
    rows = db.session.execute(sa.select(changes.c.ref_id, sa.func.sum(changes.c.cents)).group_by(changes.c.ref_id))
    return {ref_id: int(cents) for ref_id, cents in rows}


# --- workers ----------------------------------------------------------------------------------------


# Entry kinds that pay a worker a bonus (marketplace.bonuses): escrow → the worker's available balance.
BONUS_ENTRY_KINDS = ("bonus", "performance_bonus")


def worker_earnings(worker_id: str) -> dict[str, dict[str, int]]:
    """currency → the worker's available_cents, in_transit_cents, paid_cents (paid out, net of
    what reversals took back) and bonus_cents (bonuses credited, wherever their money is now), in
    one query; currencies the worker never had money in are absent."""
    available = LedgerAccount.kind == "worker_available"
    in_transit = LedgerAccount.kind == "worker_in_transit"
    rows = db.session.execute(
        sa.select(
            LedgerAccount.currency,
            sa.func.sum(sa.case((available, _as_balance("worker_available", LedgerLine.amount_cents)), else_=0)),
            sa.func.sum(sa.case((in_transit, _as_balance("worker_in_transit", LedgerLine.amount_cents)), else_=0)),
            # Paid: a transfer debits in transit (+), a reversal credits available back (-).
            sa.func.sum(sa.case(
                (in_transit & (LedgerEntry.kind == "payout_paid"), LedgerLine.amount_cents),
                (available & (LedgerEntry.kind == "payout_reversed"), LedgerLine.amount_cents),
                else_=0)),
            sa.func.sum(sa.case(
                (available & LedgerEntry.kind.in_(BONUS_ENTRY_KINDS),
                 _as_balance("worker_available", LedgerLine.amount_cents)), else_=0)),
        )
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
        .where(LedgerAccount.owner_id == worker_id,
               LedgerAccount.kind.in_(["worker_available", "worker_in_transit"]))
        .group_by(LedgerAccount.currency)
    ).all()
    return {currency: {"available_cents": int(available_cents or 0), "in_transit_cents": int(in_transit_cents or 0),
                       "paid_cents": int(paid or 0), "bonus_cents": int(bonus or 0)}
            for currency, available_cents, in_transit_cents, paid, bonus in rows}


def worker_balances(worker_id: str, kind: str) -> dict[str, int]:
    """currency → the worker's balance in their accounts of this kind (worker_available,
    worker_held…), in one query; currencies without such an account are absent."""
    rows = db.session.execute(
        sa.select(LedgerAccount.currency, _as_balance(kind, sa.func.sum(LedgerLine.amount_cents)))
        .join(LedgerLine, LedgerLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.owner_id == worker_id, LedgerAccount.kind == kind)
        .group_by(LedgerAccount.currency)
    ).all()
    return {currency: int(cents or 0) for currency, cents in rows}
