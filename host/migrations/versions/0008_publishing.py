"""publishing: uploaded package versions with their lifecycle status, the history of every
status change, and notifications to publishers

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('package_versions',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('publisher_kind', sa.String(length=16), nullable=False),
    sa.Column('publisher_id', sa.String(length=32), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('checksum', sa.String(length=71), nullable=False),
    sa.Column('archive_sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('release_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('uploaded_by', sa.String(length=128), nullable=False),
    sa.Column('submitted_by', sa.String(length=128), nullable=True),
    sa.Column('reviewed_by', sa.String(length=128), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_package_versions_plugin_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_package_versions')),
    sa.UniqueConstraint('plugin_id', 'version', name=op.f('uq_package_versions_plugin_id'))
    )
    op.create_index('ix_package_versions_publisher', 'package_versions', ['publisher_kind', 'publisher_id'], unique=False)
    op.create_index('ix_package_versions_status', 'package_versions', ['status'], unique=False)

    op.create_table('package_version_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('version_pk', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_pk'], ['package_versions.pk'], name=op.f('fk_package_version_history_version_pk_package_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_package_version_history'))
    )
    op.create_index('ix_package_version_history_version_pk', 'package_version_history', ['version_pk', 'id'], unique=False)

    op.create_table('publisher_notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('publisher_kind', sa.String(length=16), nullable=False),
    sa.Column('publisher_id', sa.String(length=32), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('transition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['transition_id'], ['package_version_history.id'], name=op.f('fk_publisher_notifications_transition_id_package_version_history'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publisher_notifications'))
    )
    op.create_index('ix_publisher_notifications_publisher', 'publisher_notifications', ['publisher_kind', 'publisher_id', 'id'], unique=False)



def downgrade() -> None:
    op.drop_index('ix_publisher_notifications_publisher', table_name='publisher_notifications')
    op.drop_table('publisher_notifications')
    op.drop_index('ix_package_version_history_version_pk', table_name='package_version_history')
    op.drop_table('package_version_history')
    op.drop_index('ix_package_versions_status', table_name='package_versions')
    op.drop_index('ix_package_versions_publisher', table_name='package_versions')
    op.drop_table('package_versions')
