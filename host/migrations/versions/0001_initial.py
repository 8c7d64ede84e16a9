"""registry, storage, branches and installations

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('branches',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('parent_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_code'], ['branches.code'], name=op.f('fk_branches_parent_code_branches')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_branches'))
    )
    op.create_table('plugin_storage',
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('customer', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('plugin_id', 'customer', 'key', name=op.f('pk_plugin_storage'))
    )
    with op.batch_alter_table('plugin_storage', schema=None) as batch_op:
        batch_op.create_index('ix_plugin_storage_expires_at', ['expires_at'], unique=False)

    op.create_table('plugins',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('publisher_kind', sa.String(length=16), nullable=False),
    sa.Column('publisher_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.JSON(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugins'))
    )
    op.create_table('installations',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('installed_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_code'], ['branches.code'], name=op.f('fk_installations_branch_code_branches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_installations_plugin_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_installations')),
    sa.UniqueConstraint('branch_code', 'plugin_id', name=op.f('uq_installations_branch_code'))
    )
    op.create_table('plugin_versions',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('checksum', sa.String(length=71), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.Text(), nullable=False),
    sa.Column('approved_scopes', sa.JSON(), nullable=False),
    sa.Column('registered_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_plugin_versions_plugin_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_plugin_versions')),
    sa.UniqueConstraint('plugin_id', 'version', name=op.f('uq_plugin_versions_plugin_id'))
    )


def downgrade() -> None:
    op.drop_table('plugin_versions')
    op.drop_table('installations')
    op.drop_table('plugins')
    with op.batch_alter_table('plugin_storage', schema=None) as batch_op:
        batch_op.drop_index('ix_plugin_storage_expires_at')

    op.drop_table('plugin_storage')
    op.drop_table('branches')
