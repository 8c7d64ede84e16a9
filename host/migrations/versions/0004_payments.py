"""payments: ledger accounts, transfers, postings, payment intents and their transitions, refunds, idempotency records, risk centre, outbox

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

IMMUTABLE = ("ledger_transfers", "ledger_postings")


def _immutable() -> None:
    """The database itself refuses to change or remove a transfer or posting."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                   "BEGIN RAISE EXCEPTION '% is immutable', TG_TABLE_NAME; END $$;")
    for table in IMMUTABLE:
        if postgresql:
            op.execute(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ledger_immutable()")
        else:
            for verb in ("update", "delete"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is immutable'); END")


def _drop_immutable() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in IMMUTABLE:
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        else:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS ledger_immutable()")


def upgrade() -> None:
    op.create_table('idempotency_records',
    sa.Column('caller', sa.String(length=96), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('caller', 'key', name=op.f('pk_idempotency_records'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_records_expires_at', ['expires_at'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=96), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'customer' OR balance >= 0", name=op.f('ck_ledger_accounts_customer_balance_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('kind', 'owner', 'currency', name='uq_ledger_accounts_kind_owner_currency')
    )
    op.create_table('outbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=True),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', host.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events'))
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_events_pending', ['delivered_at', 'id'], unique=False)

    op.create_table('risk_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_decisions'))
    )
    with op.batch_alter_table('risk_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_risk_decisions_customer_at', ['customer_id', 'at'], unique=False)
        batch_op.create_index('ix_risk_decisions_intent', ['intent_id'], unique=False)

    op.create_table('risk_settings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('branch_code', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_settings')),
    sa.UniqueConstraint('branch_code', 'rule', name='uq_risk_settings_branch_rule')
    )
    op.create_table('payment_intents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('merchant_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=True),
    sa.Column('branch_code', sa.String(length=16), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('amount_refunded', sa.BigInteger(), nullable=False),
    sa.Column('transfer_id', sa.String(length=40), nullable=True),
    sa.Column('failure_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_intents_amount_positive')),
    sa.CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name=op.f('ck_payment_intents_refunds_within_amount')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_payment_intents_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_account_id'], ['ledger_accounts.id'], name=op.f('fk_payment_intents_merchant_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugins.id'], name=op.f('fk_payment_intents_plugin_id_plugins')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_intents')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_payment_intents_transfer_id'))
    )
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.create_index('ix_payment_intents_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_payment_intents_plugin_created', ['plugin_id', 'created_at'], unique=False)

    op.create_table('risk_known_devices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('first_seen', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_risk_known_devices_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_known_devices')),
    sa.UniqueConstraint('customer_id', 'device', name='uq_risk_known_devices_customer_device')
    )
    op.create_table('ledger_transfers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=True),
    sa.Column('refund_id', sa.String(length=40), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_ledger_transfers_amount_positive')),
    sa.ForeignKeyConstraint(['intent_id'], ['payment_intents.id'], name=op.f('fk_ledger_transfers_intent_id_payment_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transfers')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_ledger_transfers_refund_id'))
    )
    with op.batch_alter_table('ledger_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_transfers_intent_id'), ['intent_id'], unique=False)

    op.create_table('payment_intent_transitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=False),
    sa.Column('from_state', sa.String(length=24), nullable=True),
    sa.Column('to_state', sa.String(length=24), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['intent_id'], ['payment_intents.id'], name=op.f('fk_payment_intent_transitions_intent_id_payment_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_intent_transitions'))
    )
    with op.batch_alter_table('payment_intent_transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_intent_transitions_intent_id'), ['intent_id'], unique=False)

    op.create_table('payment_refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('transfer_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['intent_id'], ['payment_intents.id'], name=op.f('fk_payment_refunds_intent_id_payment_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_refunds')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_payment_refunds_transfer_id'))
    )
    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_refunds_intent_id'), ['intent_id'], unique=False)

    op.create_table('ledger_postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transfer_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', host.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_ledger_postings_amount_not_zero')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_postings_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['transfer_id'], ['ledger_transfers.id'], name=op.f('fk_ledger_postings_transfer_id_ledger_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_postings'))
    )
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_postings_account_at', ['account_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_postings_transfer_id'), ['transfer_id'], unique=False)


    _immutable()

def downgrade() -> None:
    _drop_immutable()
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_postings_transfer_id'))
        batch_op.drop_index('ix_ledger_postings_account_at')

    op.drop_table('ledger_postings')
    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_refunds_intent_id'))

    op.drop_table('payment_refunds')
    with op.batch_alter_table('payment_intent_transitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_intent_transitions_intent_id'))

    op.drop_table('payment_intent_transitions')
    with op.batch_alter_table('ledger_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_transfers_intent_id'))

    op.drop_table('ledger_transfers')
    op.drop_table('risk_known_devices')
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_intents_plugin_created')
        batch_op.drop_index('ix_payment_intents_customer_created')

    op.drop_table('payment_intents')
    op.drop_table('risk_settings')
    with op.batch_alter_table('risk_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_decisions_intent')
        batch_op.drop_index('ix_risk_decisions_customer_at')

    op.drop_table('risk_decisions')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_pending')

    op.drop_table('outbox_events')
    op.drop_table('ledger_accounts')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_records_expires_at')

    op.drop_table('idempotency_records')
