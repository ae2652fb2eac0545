"""Each table and state machine has one owning package: the source says so, checked by reading it.

A status column is written only by its owner's transition functions, and no module outside ledger/
names a ledger table. These read the source (as text and as Python syntax), not the running app:
they keep true what the layout promises, so that "where does a task's status change?" and "who
reads the ledger?" each have one answer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "marketplace"

# Owned model → the module that alone writes its status.
STATUS_OWNERS = {
    "Task": "tasks/lifecycle.py",
    "Claim": "tasks/lifecycle.py",
    "Submission": "proofs/lifecycle.py",
}
TABLES = {"Task": "tasks", "Claim": "claims", "Submission": "submissions"}
# Modules that set `.status` on rows of their own tables (payments, refunds, payout items and
# batches, briefs, cases, appeals); anywhere else an assignment to `.status` is a write nobody owns.
OWN_STATUS_ASSIGNMENTS = {"payments/service.py", "payouts/service.py", "briefs/lifecycle.py",
                          "tasks/lifecycle.py", "proofs/lifecycle.py", "cases/service.py",
                          "webhooks/service.py",  # (webhook deliveries: pending → succeeded | failed)
                          "appeals/service.py"}
OWNED_NAMES = re.compile(r"task|claim|held|submission|\bsub\b|\brow\b")


def status_writes(root: Path) -> list[str]:
    """Every place under `root` (an application package) that writes a task's, claim's or
    submission's status outside its owner, as 'path:line: what'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        source = path.read_text()
        tree = ast.parse(source, str(path))
        for node in ast.walk(tree):
            found += [f"{rel}:{node.lineno}: {what}" for what in _writes(node, rel)]
        for model, table in TABLES.items():
            if rel == STATUS_OWNERS[model]:
                continue
            for match in re.finditer(rf"(UPDATE|INSERT INTO)\s+{table}\b[^;]*?\bstatus\b", source, re.I | re.S):
                found.append(f"{rel}:{source.count(chr(10), 0, match.start()) + 1}: SQL text writes {table}.status")
    return found


def _writes(node: ast.AST, rel: str) -> list[str]:
    out = []
    if isinstance(node, ast.Call):
        name = _called_name(node.func)
        # Model(status=…): a row made with a status.
        if name in STATUS_OWNERS and rel != STATUS_OWNERS[name] and any(k.arg == "status" for k in node.keywords):
            out.append(f"{name}(status=…)")
        # update(Model)….values(status=…) or .values({"status": …}), insert likewise, also
        # through Model.__table__.update()
        if isinstance(node.func, ast.Attribute) and node.func.attr == "values" and (
                any(k.arg == "status" for k in node.keywords) or any(
                    isinstance(a, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "status"
                                                    for k in a.keys) for a in node.args)):
            model = _statement_model(node.func.value)
            if model in STATUS_OWNERS and rel != STATUS_OWNERS[model]:
                out.append(f"{model} status written by .values(status=…)")
        # setattr(row, "status", …)
        if name == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and node.args[1].value == "status" and rel not in STATUS_OWNERS.values():
            out.append("setattr(…, 'status', …) outside the owners")
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and rel not in STATUS_OWNERS.values():
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if not (isinstance(element, ast.Attribute) and element.attr == "status"):
                    continue
                # The modules that set the status of rows of their own tables may, but never on
                # something named like a task, a claim or a submission.
                receiver = ast.unparse(element.value).lower()
                if rel not in OWN_STATUS_ASSIGNMENTS or OWNED_NAMES.search(receiver):
                    out.append(f"{ast.unparse(element)} = … (a status assigned outside every owner)")
    return out


def _called_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _statement_model(expr: ast.AST) -> str | None:
    """The model an update()/insert() chain starts from (sa.update(Task).where(…) → 'Task')."""
    while isinstance(expr, (ast.Call, ast.Attribute)):
        if isinstance(expr, ast.Call):
            if _called_name(expr.func) in ("update", "insert"):
                # sa.update(Task) / insert(Task.__table__), or Task.__table__.update()
                first = expr.args[0] if expr.args else (
                    expr.func.value if isinstance(expr.func, ast.Attribute) else None)
                if isinstance(first, ast.Attribute) and first.attr == "__table__":
                    first = first.value
                return first.id if isinstance(first, ast.Name) else None
            expr = expr.func
        else:
            expr = expr.value
    return None


def test_only_the_owners_write_task_claim_and_submission_status():
    assert status_writes(APP) == []


def test_the_status_check_finds_writes_outside_the_owners(tmp_path):
    """The check above cannot pass by finding nothing: each kind of write it looks for is caught."""
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "service.py").write_text(
        "import sqlalchemy as sa\n"
        "def approve(ids, held):\n"
        "    sa.update(Task).where(Task.id.in_(ids)).values(status='approved')\n"
        "    held.status = 'submitted'\n"
        "    db.session.add(Submission(status='validating'))\n"
        "    db.session.execute(sa.text(\"UPDATE claims SET status = 'expired' WHERE id = :id\"))\n"
        "    db.session.execute(Submission.__table__.update().values({'status': 'paid'}))\n"
        "    setattr(held, 'status', 'released')\n"
    )
    (tmp_path / "payments").mkdir()
    (tmp_path / "payments" / "service.py").write_text(
        "def settle(refund, claim):\n    refund.status = 'succeeded'\n    claim.status = 'expired'\n")
    found = status_writes(tmp_path)
    assert sorted(line.split(": ", 1)[1] for line in found) == sorted([
        "Task status written by .values(status=…)",
        "held.status = … (a status assigned outside every owner)",
        "Submission(status=…)",
        "SQL text writes claims.status",
        "Submission status written by .values(status=…)",
        "setattr(…, 'status', …) outside the owners",
        "claim.status = … (a status assigned outside every owner)",
    ])


# --- the ledger ---------------------------------------------------------------------------------

LEDGER_TABLE = re.compile(r"\bledger_(accounts|entries|lines)\b|\bLedger(Account|Entry|Line)\b")
# The one import outside ledger/ allowed: every model, so the metadata (and Alembic) sees every table.
METADATA_IMPORT = ("models.py", "from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerLine")


def _naming(pattern: re.Pattern, owner: str, allowed: tuple[str, str], root: Path = APP) -> list[str]:
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
