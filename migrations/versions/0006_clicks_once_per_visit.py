"""clicks: counted once per visitor per window, and capped per address

One address and user agent could request /t/{code} a thousand times and be a thousand clicks in
the report. A click now carries its visitor (a keyed digest of address and user agent together)
and the window it fell in; one visitor's clicks on one link count once per window (a unique
index, so concurrent requests cannot both count), and an address writes at most a set number of
clicks a minute (an index on the address digest and time). Every request still redirects.
Clicks stored before this migration keep null here and each still counts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visitor_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('visit_window', sa.BigInteger(), nullable=True))
        batch_op.create_index('uq_clicks_one_per_visit', ['claim_id', 'visitor_hash', 'visit_window'], unique=True)
        batch_op.create_index('ix_clicks_ip_at', ['ip_hash', 'clicked_at'], unique=False)


def downgrade():
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_ip_at')
        batch_op.drop_index('uq_clicks_one_per_visit')
        batch_op.drop_column('visit_window')
        batch_op.drop_column('visitor_hash')
