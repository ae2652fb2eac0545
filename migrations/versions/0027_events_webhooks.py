"""events and webhooks: the brand's events (the outbox), its webhook endpoints and their deliveries

Revision ID: 0027
Revises: 0024
Create Date: 2026-12-04 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'events',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('brand_id', sa.String(length=40), nullable=False),
        sa.Column('type', sa.String(length=60), nullable=False),
        sa.Column('object', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_events_brand_id_brands')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    )
    op.create_index('ix_events_brand_created', 'events', ['brand_id', 'created_at', 'id'])
    op.create_index('ix_events_brand_type_created', 'events', ['brand_id', 'type', 'created_at', 'id'])
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('brand_id', sa.String(length=40), nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('previous_secret', sa.String(length=100), nullable=True),
        sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_webhook_endpoints_brand_id_brands')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    )
    op.create_index('ix_webhook_endpoints_brand_created', 'webhook_endpoints', ['brand_id', 'created_at', 'id'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('endpoint_id', sa.String(length=40), nullable=False),
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempt_count', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.JSON(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')",
                           name=op.f('ck_webhook_deliveries_status_known')),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_webhook_deliveries_event_id_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    )
    op.create_index('ix_webhook_deliveries_endpoint_created', 'webhook_deliveries',
                    ['endpoint_id', 'created_at', 'id'])
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_event', 'webhook_deliveries', ['event_id'])


def downgrade():
    op.drop_index('ix_webhook_deliveries_event', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_endpoint_created', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_endpoints_brand_created', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_events_brand_type_created', table_name='events')
    op.drop_index('ix_events_brand_created', table_name='events')
    op.drop_table('events')
