"""outbox: when each event is next due for delivery (claims, retries with backoff, giving up)

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
import host.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', host.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_events_due', ['next_attempt_at'], unique=False)
    # What was pending is due at once.
    op.execute("UPDATE outbox_events SET next_attempt_at = created_at WHERE delivered_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_due')
        batch_op.drop_column('next_attempt_at')
