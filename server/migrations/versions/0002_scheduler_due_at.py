"""scheduler bookkeeping: deployments.scheduler_due_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa
import flowdeck.server.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduler_due_at', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_deployments_scheduler_due_at'), ['scheduler_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_scheduler_due_at'))
        batch_op.drop_column('scheduler_due_at')
