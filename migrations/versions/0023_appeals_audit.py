"""appeals and the audit log: appeals of rejections; how long each rejection can be appealed; the
audit log gets its own owner, indexes for its filters, and is append-only in the database

audit_events (made by 0008 for cases) is now marketplace.audit's. On PostgreSQL a statement trigger
refuses every UPDATE and DELETE on it (TRUNCATE, which only `flask demo --reset` and the tests'
clean-up issue, fires none); on SQLite row triggers refuse both, and the demo's reset lifts them
while it wipes.

submissions.appealable_until: when a rejection or an auto-rejection stops being appealable (fixed
when it is made, so a later APPEAL_WINDOW_DAYS change never moves it); a closed brief keeps in
escrow the value of its rejections whose window is still open.

Revision ID: 0023
Revises: 0017
Create Date: 2026-12-04 06:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: record a new event instead of changing one'
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
"""
DROP_APPEND_ONLY = """
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION audit_events_append_only();
"""
SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN "
    "SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN "
    "SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]


def upgrade():
    op.create_index('ix_audit_events_created', 'audit_events', ['created_at', 'id'])
    op.create_index('ix_audit_events_actor_created', 'audit_events', ['actor', 'created_at', 'id'])
    op.create_index('ix_audit_events_action_created', 'audit_events', ['action', 'created_at', 'id'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)

    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appealable_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_submissions_brief_appealable', 'submissions', ['brief_id', 'appealable_until'],
                    postgresql_where=sa.text("appealable_until IS NOT NULL"),
                    sqlite_where=sa.text("appealable_until IS NOT NULL"))

    op.create_table(
        'appeals',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('submission_id', sa.String(length=40), nullable=False),
        sa.Column('worker_id', sa.String(length=40), nullable=False),
        sa.Column('brief_id', sa.String(length=40), nullable=False),
        sa.Column('message', sa.String(length=2000), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=60), nullable=True),
        sa.Column('decision_reason', sa.String(length=1000), nullable=True),
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name=op.f('ck_appeals_status_known')),
        sa.ForeignKeyConstraint(['brief_id'], ['briefs.id'], name=op.f('fk_appeals_brief_id_briefs')),
        sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_appeals_submission_id_submissions')),
        sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_appeals_worker_id_workers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals')),
        sa.UniqueConstraint('submission_id', name=op.f('uq_appeals_submission_id')),
    )
    op.create_index('ix_appeals_brief_id', 'appeals', ['brief_id'])
    op.create_index('ix_appeals_status_created', 'appeals', ['status', 'created_at', 'id'])
    op.create_index('ix_appeals_worker_status', 'appeals', ['worker_id', 'status'])


def downgrade():
    op.drop_index('ix_appeals_worker_status', table_name='appeals')
    op.drop_index('ix_appeals_status_created', table_name='appeals')
    op.drop_index('ix_appeals_brief_id', table_name='appeals')
    op.drop_table('appeals')
    op.drop_index('ix_submissions_brief_appealable', table_name='submissions')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('appealable_until')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(DROP_APPEND_ONLY)
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute("DROP TRIGGER audit_events_no_update")
    op.drop_index('ix_audit_events_action_created', table_name='audit_events')
    op.drop_index('ix_audit_events_actor_created', table_name='audit_events')
    op.drop_index('ix_audit_events_created', table_name='audit_events')
