"""oauth: clients, pushed requests, codes, tokens, the consent ledger, replay cache, mini-program login codes

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_replay',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_oauth_replay'))
    )
    with op.batch_alter_table('oauth_replay', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_replay_expires_at', ['expires_at'], unique=False)

    op.create_table('oauth_clients',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jwks', sa.JSON(), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('grant_types', sa.JSON(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['plugins.id'], name=op.f('fk_oauth_clients_client_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_oauth_clients'))
    )
    op.create_table('consent_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('granted_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_consent_grants_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_consent_grants_plugin_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_grants'))
    )
    with op.batch_alter_table('consent_grants', schema=None) as batch_op:
        batch_op.create_index('uq_consent_grants_live', ['customer_id', 'plugin_id', 'scope'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    op.create_table('mp_login_codes',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('issued_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_mp_login_codes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_mp_login_codes_plugin_id_plugins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_mp_login_codes'))
    )
    op.create_table('oauth_authorization_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('code_challenge', sa.String(length=43), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=False),
    sa.Column('dpop_jkt', sa.String(length=43), nullable=True),
    sa.Column('issued_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'], name=op.f('fk_oauth_authorization_codes_client_id_oauth_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_oauth_authorization_codes_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_authorization_codes')),
    sa.UniqueConstraint('digest', name=op.f('uq_oauth_authorization_codes_digest'))
    )
    op.create_table('oauth_pushed_authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim_digest', sa.String(length=64), nullable=True),
    sa.Column('interaction_expires_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'], name=op.f('fk_oauth_pushed_authorizations_client_id_oauth_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_pushed_authorizations')),
    sa.UniqueConstraint('digest', name=op.f('uq_oauth_pushed_authorizations_digest'))
    )
    op.create_table('oauth_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=True),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('jkt', sa.String(length=43), nullable=True),
    sa.Column('code_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'], name=op.f('fk_oauth_tokens_client_id_oauth_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['code_id'], ['oauth_authorization_codes.id'], name=op.f('fk_oauth_tokens_code_id_oauth_authorization_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_oauth_tokens_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_oauth_tokens_digest'))
    )
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_tokens_client_customer', ['client_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_oauth_tokens_code_id', ['code_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_tokens_code_id')
        batch_op.drop_index('ix_oauth_tokens_client_customer')

    op.drop_table('oauth_tokens')
    op.drop_table('oauth_pushed_authorizations')
    op.drop_table('oauth_authorization_codes')
    op.drop_table('mp_login_codes')
    with op.batch_alter_table('consent_grants', schema=None) as batch_op:
        batch_op.drop_index('uq_consent_grants_live', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    op.drop_table('consent_grants')
    op.drop_table('oauth_clients')
    with op.batch_alter_table('oauth_replay', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_replay_expires_at')

    op.drop_table('oauth_replay')
