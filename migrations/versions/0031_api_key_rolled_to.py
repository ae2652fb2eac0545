"""api keys: a rolled key names its successor, so a key rolls once (two rolls at once make one new key)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 20:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('credentials') as batch:
        batch.add_column(sa.Column('rolled_to', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('credentials') as batch:
        batch.drop_column('rolled_to')
