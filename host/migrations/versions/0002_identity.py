"""people and the audit log

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


APPEND_ONLY_POSTGRESQL = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
"""

APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]


def _append_only() -> None:
    """The database itself refuses to change or remove an audit event."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_POSTGRESQL)
    else:
        for statement in APPEND_ONLY_SQLITE:
            op.execute(statement)


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('subject', sa.String(length=128), nullable=True),
    sa.Column('plugin_id', sa.String(length=64), nullable=True),
    sa.Column('branch', sa.String(length=16), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_action', ['action'], unique=False)
        batch_op.create_index('ix_audit_events_actor', ['actor'], unique=False)
        batch_op.create_index('ix_audit_events_at', ['at'], unique=False)

    op.create_table('partner_orgs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_orgs'))
    )
    op.create_table('customers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('pin_failed_attempts', sa.Integer(), nullable=False),
    sa.Column('pin_locked_until', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('nickname', sa.String(length=40), nullable=False),
    sa.Column('avatar', sa.String(length=200), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['branch_code'], ['branches.code'], name=op.f('fk_customers_branch_code_branches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('phone', name=op.f('uq_customers_phone'))
    )
    op.create_table('partner_developers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('org_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['partner_orgs.id'], name=op.f('fk_partner_developers_org_id_partner_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_developers')),
    sa.UniqueConstraint('email', name=op.f('uq_partner_developers_email'))
    )
    op.create_table('staff',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['branch_code'], ['branches.code'], name=op.f('fk_staff_branch_code_branches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_username'))
    )
    _append_only()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.drop_table('staff')
    op.drop_table('partner_developers')
    op.drop_table('customers')
    op.drop_table('partner_orgs')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_at')
        batch_op.drop_index('ix_audit_events_actor')
        batch_op.drop_index('ix_audit_events_action')

    op.drop_table('audit_events')
