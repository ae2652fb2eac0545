"""notifications: a worker's feed of decisions, payments, bonuses and appeals, and its e-mail state

Revision ID: 0017
Revises: 0009
Create Date: 2026-12-03 23:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notifications',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('reason_code', sa.String(length=32), nullable=True),
        sa.Column('message', sa.String(length=2000), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('email_state', sa.String(length=8), server_default='none', nullable=False),
        sa.Column('email_attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('email_next_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('email_error', sa.String(length=500), nullable=True),
        sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('approved', 'rejected', 'revision_requested', 'paid', 'bonus', 'appeal_decided')",
                           name=op.f('ck_notifications_kind_known')),
        sa.CheckConstraint("email_state IN ('none', 'pending', 'sent', 'failed')",
                           name=op.f('ck_notifications_email_state_known')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_notifications_worker_id_workers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('kind', 'subject_id', name='uq_notifications_kind_subject'),
    )
    op.create_index('ix_notifications_worker_created', 'notifications', ['worker_id', 'created_at', 'id'])
    op.create_index('ix_notifications_email_due', 'notifications', ['email_next_at'],
                    postgresql_where=sa.text("email_state = 'pending'"), sqlite_where=sa.text("email_state = 'pending'"))


def downgrade():
    op.drop_index('ix_notifications_email_due', table_name='notifications')
    op.drop_index('ix_notifications_worker_created', table_name='notifications')
    op.drop_table('notifications')
