"""sweeps

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:57:42.841235
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('base_config_json', sa.String(), nullable=False),
    sa.Column('grid_json', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_sweep_id'), ['sweep_id'], unique=False)
        batch_op.create_foreign_key('fk_runs_sweep_id_sweeps', 'sweeps', ['sweep_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_runs_sweep_id_sweeps', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_runs_sweep_id'))
        batch_op.drop_column('sweep_id')

    op.drop_table('sweeps')

