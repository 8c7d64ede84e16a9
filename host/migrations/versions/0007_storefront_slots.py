"""storefronts: banners and feed cards (a branch's or bank-wide), operating rights head office
grants branches, and customer tags that slots can target

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('storefront_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('title_zh', sa.String(length=60), nullable=False),
    sa.Column('title_en', sa.String(length=60), nullable=False),
    sa.Column('body_zh', sa.String(length=200), nullable=False),
    sa.Column('body_en', sa.String(length=200), nullable=False),
    sa.Column('image', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=False),
    sa.Column('starts_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_code'], ['branches.code'], name=op.f('fk_storefront_slots_branch_code_branches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storefront_slots'))
    )
    op.create_index('ix_storefront_slots_branch_code', 'storefront_slots', ['branch_code', 'kind', 'position'], unique=False)
    op.create_table('operating_rights',
    sa.Column('branch_code', sa.String(length=16), nullable=False),
    sa.Column('right', sa.String(length=32), nullable=False),
    sa.Column('granted_by', sa.String(length=64), nullable=False),
    sa.Column('granted_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_code'], ['branches.code'], name=op.f('fk_operating_rights_branch_code_branches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('branch_code', 'right', name=op.f('pk_operating_rights'))
    )
    op.create_table('customer_tags',
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('tag', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_tags_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag', name=op.f('pk_customer_tags'))
    )


def downgrade() -> None:
    op.drop_table('customer_tags')
    op.drop_table('operating_rights')
    op.drop_index('ix_storefront_slots_branch_code', table_name='storefront_slots')
    op.drop_table('storefront_slots')
