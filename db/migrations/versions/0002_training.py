"""training: loss points per step, parent runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:08:22.891142
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('train_points',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(), nullable=False),
    sa.Column('loss', sa.Float(), nullable=False),
    sa.Column('lr', sa.Float(), nullable=True),
    sa.Column('grad_norm', sa.Float(), nullable=True),
    sa.Column('samples_per_s', sa.Float(), nullable=True),
    sa.Column('info', sa.String(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('train_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_train_points_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key('fk_runs_parent_id_runs', 'runs', ['parent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_runs_parent_id_runs', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_runs_parent_id'))
        batch_op.drop_column('parent_id')

    with op.batch_alter_table('train_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_train_points_run_id'))

    op.drop_table('train_points')

