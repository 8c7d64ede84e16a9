"""publishing: releases (stable, gray with its rule, previous, the kill switch), the gray
versions' health per minute, promotions to the whole bank, and notifications about a whole
mini-program

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa

import host.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'plugin_releases',
        sa.Column('plugin_id', sa.String(length=64), nullable=False),
        sa.Column('stable', sa.String(length=64), nullable=True),
        sa.Column('previous', sa.String(length=64), nullable=True),
        sa.Column('gray', sa.String(length=64), nullable=True),
        sa.Column('gray_rule', sa.JSON(), nullable=False),
        sa.Column('gray_since', host.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('suspended_at', host.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('suspended_reason', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=False),
        sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_plugin_releases_plugin_id_plugins'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('plugin_id', name=op.f('pk_plugin_releases')),
    )
    op.create_table(
        'release_health',
        sa.Column('plugin_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('minute', host.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Integer(), nullable=False),
        sa.Column('payments', sa.Integer(), nullable=False),
        sa.Column('payment_failures', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('plugin_id', 'version', 'minute', name=op.f('pk_release_health')),
    )


    op.create_table(
        'plugin_promotions',
        sa.Column('plugin_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('proposed_by', sa.String(length=128), nullable=False),
        sa.Column('proposal', sa.Text(), nullable=False),
        sa.Column('proposed_at', host.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=128), nullable=True),
        sa.Column('decision', sa.Text(), nullable=False),
        sa.Column('decided_at', host.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_plugin_promotions_plugin_id_plugins'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('plugin_id', name=op.f('pk_plugin_promotions')),
    )
    with op.batch_alter_table('publisher_notifications') as batch:
        batch.alter_column('transition_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True)


def downgrade() -> None:
    op.drop_table('plugin_promotions')
    with op.batch_alter_table('publisher_notifications') as batch:
        batch.alter_column('transition_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)
    op.drop_table('release_health')
    op.drop_table('plugin_releases')
