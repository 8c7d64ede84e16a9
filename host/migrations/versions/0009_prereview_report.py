"""publishing: the automated pre-review's report, stored with each submitted version

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('package_versions') as batch:
        batch.add_column(sa.Column('prereview', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('package_versions') as batch:
        batch.drop_column('prereview')
