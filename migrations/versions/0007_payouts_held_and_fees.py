"""payout items held until Stripe's pending funds are available; Stripe's fee on each payment

Card money reaches the platform's Stripe balance pending, less Stripe's fee, and a transfer can
only spend what is available. A payout item that the available balance cannot cover now waits
as `held`, saying when its money becomes available (available_on), and is sent again later
under a new idempotency key: Stripe saves and replays a refusal under the key it was made with,
so each try has its number (transfer_attempt; the first try's key is the item id alone, as
before). A payment records the charge Stripe made for it and the fee Stripe kept, as its
balance transaction says, so the fee is booked once and `flask payments reconcile` can match
Stripe's balance transactions to our records. Rows written before this migration: items keep
transfer_attempt 1, payments null charge and fee (nothing was booked for their fee).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('available_on', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('transfer_attempt', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint(
            'status_known', "status IN ('pending', 'sending', 'held', 'paid', 'failed', 'reversed')")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripe_charge_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('stripe_fee_cents', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_payments_stripe_charge_id', ['stripe_charge_id'], unique=True)


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_stripe_charge_id')
        batch_op.drop_column('stripe_fee_cents')
        batch_op.drop_column('stripe_charge_id')
    op.execute("UPDATE payout_items SET status = 'pending' WHERE status = 'held'")
    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint(
            'status_known', "status IN ('pending', 'sending', 'paid', 'failed', 'reversed')")
        batch_op.drop_column('transfer_attempt')
        batch_op.drop_column('available_on')
