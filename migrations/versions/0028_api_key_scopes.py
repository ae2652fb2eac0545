"""api keys: names, visible prefixes, scopes and last use; existing brand keys get every scope

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 17:55:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

# Every brand scope (marketplace.auth.service.BRAND_SCOPES): the sign-up key had full rights before.
ALL_SCOPES = 'briefs:read briefs:write review:write conversions:write webhooks:write keys:write'


def upgrade():
    with op.batch_alter_table('credentials') as batch:
        batch.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('prefix', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('scopes', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE credentials SET scopes = :scopes, name = 'Sign-up key' "
                       "WHERE role = 'brand' AND kind = 'api_key'").bindparams(scopes=ALL_SCOPES))


def downgrade():
    with op.batch_alter_table('credentials') as batch:
        batch.drop_column('last_used_at')
        batch.drop_column('scopes')
        batch.drop_column('prefix')
        batch.drop_column('name')
