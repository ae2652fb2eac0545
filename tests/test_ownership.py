"""Each table has one owning package: the source says so, checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "marketplace"

LEDGER_TABLE = re.compile(r"\bledger_(accounts|entries|lines)\b|\bLedger(Account|Entry|Line)\b")
# The one import outside ledger/ allowed: every model, so the metadata (and Alembic) sees every table.
METADATA_IMPORT = ("models.py", "from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerLine")


def _naming(pattern: re.Pattern, owner: str, allowed: tuple[str, str], root: Path = PACKAGE) -> list[str]:
    """file:line: text of every line outside the owner package that matches, but the allowed one."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == owner:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not (str(relative) == allowed[0] and line.startswith(allowed[1])):
                found.append(f"marketplace/{relative}:{number}: {line.strip()}")
    return found


def test_no_module_outside_the_ledger_names_a_ledger_table():
    """Balances, escrow figures and the fragments one-statement reads embed come from ledger/."""
    assert _naming(LEDGER_TABLE, "ledger", METADATA_IMPORT) == []


def test_the_ownership_check_sees_a_ledger_table_named_elsewhere(tmp_path):
    """The check above passes because nothing matches, not because it reads nothing."""
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "models.py").write_text('__tablename__ = "ledger_lines"\n')
    (tmp_path / "models.py").write_text(METADATA_IMPORT[1] + "  # noqa: F401\n")
    (tmp_path / "reports.py").write_text('lines = db.metadata.tables["ledger_lines"]\nLedgerEntry.kind\n')
    assert _naming(LEDGER_TABLE, "ledger", METADATA_IMPORT, tmp_path) == [
        'marketplace/reports.py:1: lines = db.metadata.tables["ledger_lines"]',
        "marketplace/reports.py:2: LedgerEntry.kind",
    ]
