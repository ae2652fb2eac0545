"""workforce: worker languages and social accounts, group eligibility, brand blocks, suspensions,
device digests; payout skips may say 'held' (a suspended worker's balance)

Revision ID: 0022
Revises: 0017
Create Date: 2026-12-04 06:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0020'
branch_labels = None
depends_on = None

OLD_SKIPS = "reason IN ('no_payout_account', 'payout_account_blocked', 'payouts_disabled', 'under_minimum')"
NEW_SKIPS = "reason IN ('no_payout_account', 'payout_account_blocked', 'payouts_disabled', 'under_minimum', 'held')"


def upgrade():
    op.create_table(
        'worker_languages',
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('language', sa.String(length=2), nullable=False),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_worker_languages_worker_id_workers')),
        sa.PrimaryKeyConstraint('worker_id', 'language', name=op.f('pk_worker_languages')),
    )
    op.create_table(
        'social_accounts',
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('handle', sa.String(length=100), nullable=False),
        sa.Column('handle_key', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("platform IN ('tiktok', 'instagram', 'youtube', 'x')",
                           name=op.f('ck_social_accounts_platform_known')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_social_accounts_worker_id_workers')),
        sa.PrimaryKeyConstraint('worker_id', 'platform', name=op.f('pk_social_accounts')),
    )
    op.create_index('ix_social_accounts_platform_handle', 'social_accounts', ['platform', 'handle_key'])
    op.create_table(
        'group_eligibility',
        sa.Column('group_id', sa.String(length=40), nullable=False),
        sa.Column('min_approval_rate', sa.Numeric(precision=4, scale=3), nullable=True),
        sa.Column('min_approved', sa.Integer(), nullable=True),
        sa.Column('has_countries', sa.Boolean(), nullable=False),
        sa.Column('has_languages', sa.Boolean(), nullable=False),
        sa.Column('invite_only', sa.Boolean(), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.CheckConstraint('min_approval_rate IS NULL OR (min_approval_rate >= 0 AND min_approval_rate <= 1)',
                           name=op.f('ck_group_eligibility_rate_in_range')),
        sa.CheckConstraint('min_approved IS NULL OR min_approved >= 0',
                           name=op.f('ck_group_eligibility_approved_not_negative')),
        sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'], name=op.f('fk_group_eligibility_group_id_task_groups')),
        sa.PrimaryKeyConstraint('group_id', name=op.f('pk_group_eligibility')),
    )
    op.create_table(
        'group_eligibility_values',
        sa.Column('group_id', sa.String(length=40), nullable=False),
        sa.Column('rule', sa.String(length=16), nullable=False),
        sa.Column('value', sa.String(length=40), nullable=False),
        sa.CheckConstraint("rule IN ('countries', 'languages', 'workers', 'exclude_workers')",
                           name=op.f('ck_group_eligibility_values_rule_known')),
        sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'],
                                name=op.f('fk_group_eligibility_values_group_id_task_groups')),
        sa.PrimaryKeyConstraint('group_id', 'rule', 'value', name=op.f('pk_group_eligibility_values')),
    )
    op.create_table(
        'brand_blocks',
        sa.Column('brand_id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_brand_blocks_brand_id_brands')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_brand_blocks_worker_id_workers')),
        sa.PrimaryKeyConstraint('brand_id', 'worker_id', name=op.f('pk_brand_blocks')),
    )
    op.create_index(op.f('ix_brand_blocks_worker_id'), 'brand_blocks', ['worker_id'])
    op.create_table(
        'worker_suspensions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('suspended_by', sa.String(length=60), nullable=False),
        sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reinstated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reinstated_by', sa.String(length=60), nullable=True),
        sa.Column('reinstate_reason', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_worker_suspensions_worker_id_workers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_suspensions')),
    )
    op.create_index('uq_worker_suspensions_open', 'worker_suspensions', ['worker_id'], unique=True,
                    postgresql_where=sa.text('reinstated_at IS NULL'), sqlite_where=sa.text('reinstated_at IS NULL'))
    op.create_index('ix_worker_suspensions_worker', 'worker_suspensions', ['worker_id', 'suspended_at'])
    op.create_table(
        'device_sightings',
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('device', sa.String(length=64), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_event', sa.String(length=16), nullable=False),
        sa.Column('seen_count', sa.Integer(), nullable=False),
        sa.CheckConstraint("last_event IN ('sign_up', 'login', 'submission')",
                           name=op.f('ck_device_sightings_event_known')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_device_sightings_worker_id_workers')),
        sa.PrimaryKeyConstraint('worker_id', 'device', name=op.f('pk_device_sightings')),
    )
    op.create_index(op.f('ix_device_sightings_device'), 'device_sightings', ['device'])
    with op.batch_alter_table('payout_skips') as batch:
        batch.drop_constraint(op.f('ck_payout_skips_reason_known'), type_='check')
        batch.create_check_constraint(op.f('ck_payout_skips_reason_known'), NEW_SKIPS)


def downgrade():
    with op.batch_alter_table('payout_skips') as batch:
        batch.drop_constraint(op.f('ck_payout_skips_reason_known'), type_='check')
        batch.create_check_constraint(op.f('ck_payout_skips_reason_known'), OLD_SKIPS)
    op.drop_index(op.f('ix_device_sightings_device'), table_name='device_sightings')
    op.drop_table('device_sightings')
    op.drop_index('ix_worker_suspensions_worker', table_name='worker_suspensions')
    op.drop_index('uq_worker_suspensions_open', table_name='worker_suspensions')
    op.drop_table('worker_suspensions')
    op.drop_index(op.f('ix_brand_blocks_worker_id'), table_name='brand_blocks')
    op.drop_table('brand_blocks')
    op.drop_table('group_eligibility_values')
    op.drop_table('group_eligibility')
    op.drop_index('ix_social_accounts_platform_handle', table_name='social_accounts')
    op.drop_table('social_accounts')
    op.drop_table('worker_languages')
