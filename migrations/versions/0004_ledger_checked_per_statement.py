"""ledger: references and balance checked once per statement; ledger rows are append-only

A bulk approval books 10,000 entries and 30,000 lines in one COPY. As foreign keys, the two
references of every line were checked row by row (an index probe and a row lock each: 60,000
of them, about half the time of the whole COPY). On PostgreSQL one statement-level trigger now
checks them for the whole batch in two anti-joins, and checks what no foreign key could: that
every entry the statement wrote balances. Nothing may update or delete a ledger row, so a
referenced entry or account can never disappear (what the foreign keys' row locks were for).

The embedded SQLite default never enforced the foreign keys (its PRAGMA foreign_keys is off);
there they are simply dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

FOREIGN_KEYS = [
    ('fk_ledger_lines_entry_id_ledger_entries', 'ledger_entries', 'entry_id'),
    ('fk_ledger_lines_account_id_ledger_accounts', 'ledger_accounts', 'account_id'),
]

CHECK_LINES = """
CREATE FUNCTION ledger_lines_check() RETURNS trigger LANGUAGE plpgsql
-- Each reference is an index probe per new line, whatever the statistics say: a ledger that was
-- small when last analysed must not be scanned whole once per line (or hashed whole per batch).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_lines l
               WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.id = l.entry_id)) THEN
        RAISE EXCEPTION 'a ledger line refers to no ledger entry' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM new_lines l
               WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = l.account_id)) THEN
        RAISE EXCEPTION 'a ledger line refers to no ledger account' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM new_lines GROUP BY entry_id HAVING sum(amount_cents) <> 0) THEN
        RAISE EXCEPTION 'a ledger entry does not balance: its lines must sum to zero'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_lines_check AFTER INSERT ON ledger_lines
    REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION ledger_lines_check();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: book a new entry instead of changing one', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_lines_append_only BEFORE UPDATE OR DELETE ON ledger_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_accounts_append_only BEFORE UPDATE OR DELETE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
"""

DROP_CHECKS = """
DROP TRIGGER ledger_accounts_append_only ON ledger_accounts;
DROP TRIGGER ledger_lines_append_only ON ledger_lines;
DROP TRIGGER ledger_entries_append_only ON ledger_entries;
DROP FUNCTION ledger_append_only();
DROP TRIGGER ledger_lines_check ON ledger_lines;
DROP FUNCTION ledger_lines_check();
"""


def upgrade():
    with op.batch_alter_table('ledger_lines', schema=None) as batch_op:
        for name, _, _ in FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_='foreignkey')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CHECK_LINES)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(DROP_CHECKS)
    with op.batch_alter_table('ledger_lines', schema=None) as batch_op:
        for name, table, column in FOREIGN_KEYS:
            batch_op.create_foreign_key(name, table, [column], ['id'])
