"""submissions: the content band's perceptual hash and its halves, and the chunk index they are looked up by

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-04 20:00:00

No backfill here: the hashes come from the screenshot's pixels, and reading and decoding every
stored screenshot (from the storage bucket, not the database) is no job for a migration. They are
computed when a submission is validated: rows validated before this revision keep a null
content_phash and no content keys, so only the whole-screen check compares new submissions with them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None

COLUMNS = ('content_phash', 'content_top', 'content_bottom', 'content_left', 'content_right')


def upgrade():
    with op.batch_alter_table('submissions') as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    op.create_table(
        'submission_content_keys',
        sa.Column('key', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('submission_id', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'],
                                name=op.f('fk_submission_content_keys_submission_id_submissions')),
        sa.PrimaryKeyConstraint('key', 'submission_id', name=op.f('pk_submission_content_keys')),
    )


def downgrade():
    op.drop_table('submission_content_keys')
    with op.batch_alter_table('submissions') as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
