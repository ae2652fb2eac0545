"""money states: paid submissions, skipped workers, our own payout block, person-only cases

A payout item now records which approved submissions its money is for (payout_item_submissions,
written in the transaction that reserves the balance), so the transfer settling makes them, their
tasks and their groups' counts paid, and a reversal brings them back to approved with the reversal
on the submission (paid_at, reversed_at, reversal). A batch stores the workers it left out and why
(payout_skips). A payout account carries a block of our own (blocked_reason, and the Stripe event
time it was set at) that a failed bank payout sets and only a newer, good account.updated lifts.
Refunds and transfers no job can settle are cases for a person (money_cases), every action on
them an audit row (audit_events); a retried refund is a new row naming the first (retry_of,
attempt).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payout_item_submissions',
    sa.Column('payout_item_id', sa.String(length=40), nullable=False),
    sa.Column('submission_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['payout_item_id'], ['payout_items.id'], name=op.f('fk_payout_item_submissions_payout_item_id_payout_items')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_payout_item_submissions_submission_id_submissions')),
    sa.PrimaryKeyConstraint('payout_item_id', 'submission_id', name=op.f('pk_payout_item_submissions'))
    )
    with op.batch_alter_table('payout_item_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_item_submissions_submission_id'), ['submission_id'], unique=False)

    op.create_table('payout_skips',
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('worker_id', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('available_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("reason IN ('no_payout_account', 'payout_account_blocked', 'payouts_disabled', 'under_minimum')", name=op.f('ck_payout_skips_reason_known')),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payout_skips_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_payout_skips_worker_id_workers')),
    sa.PrimaryKeyConstraint('batch_id', 'worker_id', name=op.f('pk_payout_skips'))
    )

    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocked_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('blocked_by_event', sa.String(length=255), nullable=True))

    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reversal', sa.String(length=500), nullable=True))

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_of', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_refunds_retry_of_refunds'), 'refunds', ['retry_of'], ['id'])
        batch_op.create_unique_constraint('uq_refunds_retry_attempt', ['retry_of', 'attempt'])

    op.create_table('money_cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('stripe_object_id', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=60), nullable=True),
    sa.CheckConstraint("kind IN ('refund_failed', 'transfer_mismatch')", name=op.f('ck_money_cases_kind_known')),
    sa.CheckConstraint("status IN ('open', 'retrying', 'resolved', 'settled')", name=op.f('ck_money_cases_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_money_cases')),
    sa.UniqueConstraint('kind', 'subject_id', name='uq_money_cases_kind_subject')
    )
    with op.batch_alter_table('money_cases', schema=None) as batch_op:
        batch_op.create_index('ix_money_cases_status_created', ['status', 'created_at', 'id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_subject'), ['subject'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_subject'))
    op.drop_table('audit_events')
    with op.batch_alter_table('money_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_money_cases_status_created')
    op.drop_table('money_cases')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_constraint('uq_refunds_retry_attempt', type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_refunds_retry_of_refunds'), type_='foreignkey')
        batch_op.drop_column('attempt')
        batch_op.drop_column('retry_of')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('reversal')
        batch_op.drop_column('reversed_at')
        batch_op.drop_column('paid_at')
    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.drop_column('blocked_by_event')
        batch_op.drop_column('blocked_at')
        batch_op.drop_column('blocked_reason')
    op.drop_table('payout_skips')
    with op.batch_alter_table('payout_item_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_item_submissions_submission_id'))
    op.drop_table('payout_item_submissions')
