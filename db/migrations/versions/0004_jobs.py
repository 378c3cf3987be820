"""runs remember the executor and scheduler job that run them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 06:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('executor', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('job_id', sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('job_id')
        batch_op.drop_column('executor')
