"""publishing: the claim on a submitted version's pre-review (it runs after the submit commits)

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa

import host.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('package_versions') as batch:
        batch.add_column(sa.Column('prereview_claimed_until', host.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('package_versions') as batch:
        batch.drop_column('prereview_claimed_until')
