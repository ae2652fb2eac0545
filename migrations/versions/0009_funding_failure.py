"""payments: why the last attempt to pay failed (a declined card), shown on the brief

payment_intent.payment_failed was only logged, so a brand whose card was declined saw nothing on
its brief. The payment keeps the failure's code, reason and time, and the created time of the
event that said so, so that events delivered out of order never put an older failure over a newer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('failure_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failure_event_created', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('failure_event_created')
        batch_op.drop_column('failed_at')
        batch_op.drop_column('failure_reason')
        batch_op.drop_column('failure_code')
