"""payment intents: an index of those awaiting confirmation by expiry (the worker's sweep)

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

AWAITING = sa.text("state = 'requires_confirmation'")


def upgrade() -> None:
    op.create_index('ix_payment_intents_due', 'payment_intents', ['expires_at'], unique=False,
                    postgresql_where=AWAITING, sqlite_where=AWAITING)


def downgrade() -> None:
    op.drop_index('ix_payment_intents_due', table_name='payment_intents')
