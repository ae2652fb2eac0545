"""promo codes: briefs.promo_codes, a unique claims.promo_code, and how each conversion was attributed

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-04 19:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('briefs') as batch:
        batch.add_column(sa.Column('promo_codes', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('claims') as batch:
        batch.add_column(sa.Column('promo_code', sa.String(length=32), nullable=True))
    # Unique platform-wide, enforced here (the claim inserts ON CONFLICT (promo_code) DO NOTHING and
    # retries with a new code); NULLs (claims of briefs without promo codes) are all distinct.
    op.create_index('uq_claims_promo_code', 'claims', ['promo_code'], unique=True)
    with op.batch_alter_table('conversions') as batch:
        # code | click_id | promo_code: which of the three the brand reported it by (NULL: stored before).
        batch.add_column(sa.Column('attributed_by', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('conversions') as batch:
        batch.drop_column('attributed_by')
    op.drop_index('uq_claims_promo_code', table_name='claims')
    with op.batch_alter_table('claims') as batch:
        batch.drop_column('promo_code')
    with op.batch_alter_table('briefs') as batch:
        batch.drop_column('promo_codes')
