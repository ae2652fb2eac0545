"""briefs: disclosure on the media (read by OCR) and usage rights

A brief may ask for the disclosure to be visible on the screenshot itself (France's influencer law
wants "Publicité" on the image, not only in the caption), and states the usage rights the brand
gets over approved content (channels, term, territories, exclusivity), which every content-bank
asset carries with its expiry.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-04 06:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disclosure_on_media', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('usage_rights', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.drop_column('usage_rights')
        batch_op.drop_column('disclosure_on_media')
