"""bonuses: one-off and performance bonuses, and a group's performance-bonus terms

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 06:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('task_groups') as batch:
        batch.add_column(sa.Column('bonus_per_conversion_cents', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('bonus_max_per_task_cents', sa.BigInteger(), nullable=True))
        batch.create_check_constraint(
            op.f('ck_task_groups_bonus_terms'),
            '(bonus_per_conversion_cents IS NULL) = (bonus_max_per_task_cents IS NULL) AND '
            '(bonus_per_conversion_cents IS NULL OR (bonus_per_conversion_cents > 0 '
            'AND bonus_max_per_task_cents >= bonus_per_conversion_cents))')
        batch.create_check_constraint(op.f('ck_task_groups_no_review_bonus'),
                                      "kind <> 'review' OR bonus_per_conversion_cents IS NULL")
    op.create_table(
        'bonuses',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('brief_id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('group_id', sa.String(length=40), nullable=True),
        sa.Column('task_id', sa.String(length=40), nullable=True),
        sa.Column('conversion_id', sa.String(length=40), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=60), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('one_off', 'performance')", name=op.f('ck_bonuses_kind_known')),
        sa.CheckConstraint('amount_cents > 0', name=op.f('ck_bonuses_amount_positive')),
        sa.CheckConstraint("(kind = 'performance') = (conversion_id IS NOT NULL)",
                           name=op.f('ck_bonuses_performance_has_conversion')),
        sa.ForeignKeyConstraint(['brief_id'], ['briefs.id'], name=op.f('fk_bonuses_brief_id_briefs')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_bonuses_worker_id_workers')),
        sa.ForeignKeyConstraint(['group_id'], ['task_groups.id'], name=op.f('fk_bonuses_group_id_task_groups')),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_bonuses_task_id_tasks')),
        sa.ForeignKeyConstraint(['conversion_id'], ['conversions.id'],
                                name=op.f('fk_bonuses_conversion_id_conversions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bonuses')),
        sa.UniqueConstraint('conversion_id', name='uq_bonuses_conversion'),
    )
    op.create_index('ix_bonuses_worker_created', 'bonuses', ['worker_id', 'created_at', 'id'])
    op.create_index('ix_bonuses_brief_created', 'bonuses', ['brief_id', 'created_at', 'id'])
    op.create_index('ix_bonuses_task_amount', 'bonuses', ['task_id', 'amount_cents'])


def downgrade():
    op.drop_index('ix_bonuses_task_amount', table_name='bonuses')
    op.drop_index('ix_bonuses_brief_created', table_name='bonuses')
    op.drop_index('ix_bonuses_worker_created', table_name='bonuses')
    op.drop_table('bonuses')
    with op.batch_alter_table('task_groups') as batch:
        batch.drop_constraint(op.f('ck_task_groups_no_review_bonus'), type_='check')
        batch.drop_constraint(op.f('ck_task_groups_bonus_terms'), type_='check')
        batch.drop_column('bonus_max_per_task_cents')
        batch.drop_column('bonus_per_conversion_cents')
