"""claims, submissions, checks, payouts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:22:47.164185

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('payout_batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('min_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'completed_with_failures')", name=op.f('ck_payout_batches_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches'))
    )
    op.create_table('payout_accounts',
    sa.Column('worker_id', sa.String(length=40), nullable=False),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=False),
    sa.Column('payouts_enabled', sa.Boolean(), nullable=False),
    sa.Column('transfers_active', sa.Boolean(), nullable=False),
    sa.Column('details_submitted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_payout_accounts_worker_id_workers')),
    sa.PrimaryKeyConstraint('worker_id', name=op.f('pk_payout_accounts')),
    sa.UniqueConstraint('stripe_account_id', name=op.f('uq_payout_accounts_stripe_account_id'))
    )
    op.create_table('payout_items',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('worker_id', sa.String(length=40), nullable=False),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stripe_transfer_id', sa.String(length=255), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'sending', 'paid', 'failed', 'reversed')", name=op.f('ck_payout_items_status_known')),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payout_items_amount_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payout_items_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_payout_items_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_items')),
    sa.UniqueConstraint('batch_id', 'worker_id', name='uq_payout_items_batch_worker'),
    sa.UniqueConstraint('stripe_transfer_id', name=op.f('uq_payout_items_stripe_transfer_id'))
    )
    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.create_index('ix_payout_items_batch_status', ['batch_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_payout_items_worker_id'), ['worker_id'], unique=False)

    op.create_table('claims',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('task_id', sa.String(length=40), nullable=False),
    sa.Column('group_id', sa.String(length=40), nullable=False),
    sa.Column('brief_id', sa.String(length=40), nullable=False),
    sa.Column('worker_id', sa.String(length=40), nullable=False),
    sa.Column('tracked_code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('active', 'submitted', 'released', 'expired', 'rejected')", name=op.f('ck_claims_status_known')),
    sa.ForeignKeyConstraint(['brief_id'], ['briefs.id'], name=op.f('fk_claims_brief_id_briefs')),
    sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'], name=op.f('fk_claims_group_id_task_groups')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_claims_task_id_tasks')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_claims_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims')),
    sa.UniqueConstraint('tracked_code', name=op.f('uq_claims_tracked_code'))
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_active_expiry', ['expires_at'], unique=False, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.create_index(batch_op.f('ix_claims_brief_id'), ['brief_id'], unique=False)
        batch_op.create_index('ix_claims_worker_group_status', ['worker_id', 'group_id', 'status'], unique=False)
        batch_op.create_index('uq_claims_task_holding', ['task_id'], unique=True, postgresql_where=sa.text("status IN ('active', 'submitted')"), sqlite_where=sa.text("status IN ('active', 'submitted')"))

    op.create_table('submissions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('task_id', sa.String(length=40), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=False),
    sa.Column('group_id', sa.String(length=40), nullable=False),
    sa.Column('brief_id', sa.String(length=40), nullable=False),
    sa.Column('worker_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('link', sa.String(length=2048), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('screenshot_key', sa.String(length=200), nullable=True),
    sa.Column('screenshot_bytes', sa.Integer(), nullable=True),
    sa.Column('screenshot_sha256', sa.String(length=64), nullable=True),
    sa.Column('phash', sa.BigInteger(), nullable=True),
    sa.Column('phash_c0', sa.Integer(), nullable=True),
    sa.Column('phash_c1', sa.Integer(), nullable=True),
    sa.Column('phash_c2', sa.Integer(), nullable=True),
    sa.Column('phash_c3', sa.Integer(), nullable=True),
    sa.Column('exif_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('text_shingles', sa.JSON(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('auto_approve_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('validation_attempts', sa.Integer(), nullable=False),
    sa.Column('validation_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejection_reasons', sa.JSON(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=60), nullable=True),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('revision_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('validating', 'needs_review', 'auto_rejected', 'approved', 'rejected', 'revision_requested', 'paid')", name=op.f('ck_submissions_status_known')),
    sa.ForeignKeyConstraint(['brief_id'], ['briefs.id'], name=op.f('fk_submissions_brief_id_briefs')),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_submissions_claim_id_claims')),
    sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'], name=op.f('fk_submissions_group_id_task_groups')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_submissions_task_id_tasks')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_submissions_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions'))
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_brief_status_created', ['brief_id', 'status', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submissions_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submissions_group_id'), ['group_id'], unique=False)
        batch_op.create_index('ix_submissions_phash_c0', ['phash_c0'], unique=False)
        batch_op.create_index('ix_submissions_phash_c1', ['phash_c1'], unique=False)
        batch_op.create_index('ix_submissions_phash_c2', ['phash_c2'], unique=False)
        batch_op.create_index('ix_submissions_phash_c3', ['phash_c3'], unique=False)
        batch_op.create_index('ix_submissions_status_created', ['status', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_submissions_task_id'), ['task_id'], unique=False)
        batch_op.create_index('ix_submissions_worker_created', ['worker_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('uq_submissions_claim_in_play', ['claim_id'], unique=True, postgresql_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')"), sqlite_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')"))

    op.create_table('submission_checks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('submission_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('pass', 'fail', 'warn')", name=op.f('ck_submission_checks_outcome_known')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_submission_checks_submission_id_submissions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission_checks')),
    sa.UniqueConstraint('submission_id', 'name', name='uq_submission_checks_submission_name')
    )



def downgrade():

    op.drop_table('submission_checks')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('uq_submissions_claim_in_play', postgresql_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')"), sqlite_where=sa.text("status IN ('validating', 'needs_review', 'approved', 'paid')"))
        batch_op.drop_index('ix_submissions_worker_created')
        batch_op.drop_index(batch_op.f('ix_submissions_task_id'))
        batch_op.drop_index('ix_submissions_status_created')
        batch_op.drop_index('ix_submissions_phash_c3')
        batch_op.drop_index('ix_submissions_phash_c2')
        batch_op.drop_index('ix_submissions_phash_c1')
        batch_op.drop_index('ix_submissions_phash_c0')
        batch_op.drop_index(batch_op.f('ix_submissions_group_id'))
        batch_op.drop_index(batch_op.f('ix_submissions_claim_id'))
        batch_op.drop_index('ix_submissions_brief_status_created')

    op.drop_table('submissions')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('uq_claims_task_holding', postgresql_where=sa.text("status IN ('active', 'submitted')"), sqlite_where=sa.text("status IN ('active', 'submitted')"))
        batch_op.drop_index('ix_claims_worker_group_status')
        batch_op.drop_index(batch_op.f('ix_claims_brief_id'))
        batch_op.drop_index('ix_claims_active_expiry', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    op.drop_table('claims')
    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_items_worker_id'))
        batch_op.drop_index('ix_payout_items_batch_status')

    op.drop_table('payout_items')
    op.drop_table('payout_accounts')
    op.drop_table('payout_batches')

