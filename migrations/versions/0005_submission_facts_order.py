"""submissions: the order in which their facts were stored, for duplicate and near-copy checks

Which of two matching submissions is the copy was decided by created_at. A submission's row
commits some time after created_at is taken (its upload is written first), so a later one
could be validated while an earlier one was not yet visible: each then compared only with
what came before it, and neither saw the other; one picture was paid twice. Now facts_seq
numbers submissions in the order their facts (perceptual hash, text shingles) are stored,
one at a time under a lock, and each compares with those numbered before it: of any two,
exactly one sees the other. Rows stored before this migration are numbered by created_at.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 07:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts_seq', sa.BigInteger(), nullable=True))
    op.execute("""
        UPDATE submissions SET facts_seq = numbered.n
        FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM submissions
              WHERE phash IS NOT NULL OR text_shingles IS NOT NULL) AS numbered
        WHERE submissions.id = numbered.id
    """)
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('uq_submissions_facts_seq', ['facts_seq'], unique=True)


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('uq_submissions_facts_seq')
        batch_op.drop_column('facts_seq')
