"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa
import flowdeck.server.models
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flow_data_blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_flow_data_blobs'))
    )
    op.create_table('flows',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flows')),
    sa.UniqueConstraint('name', name=op.f('uq_flows_name'))
    )
    op.create_table('request_log',
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('method', 'request_id', name=op.f('pk_request_log'))
    )
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_log_created'), ['created'], unique=False)

    op.create_table('storage_blocks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storage_blocks')),
    sa.UniqueConstraint('config_hash', name=op.f('uq_storage_blocks_config_hash'))
    )
    op.create_table('work_queues',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('filter_tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('filter_deployment_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('filter_flow_runner_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('is_paused', sa.Boolean(), nullable=False),
    sa.Column('concurrency_limit', sa.Integer(), nullable=True),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_queues')),
    sa.UniqueConstraint('name', name=op.f('uq_work_queues_name'))
    )
    op.create_table('deployments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flow_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('flow_data_encoding', sa.String(length=32), nullable=False),
    sa.Column('flow_data_blob', sa.Text(), nullable=False),
    sa.Column('schedule', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('is_schedule_active', sa.Boolean(), nullable=False),
    sa.Column('parameters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('flow_runner_type', sa.String(length=64), nullable=False),
    sa.Column('flow_runner_config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('catchup', sa.Boolean(), nullable=False),
    sa.Column('max_lateness_seconds', sa.Float(), nullable=True),
    sa.Column('storage_block_id', sa.String(length=36), nullable=True),
    sa.Column('scheduled_until', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flow_id'], ['flows.id'], name=op.f('fk_deployments_flow_id_flows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['storage_block_id'], ['storage_blocks.id'], name=op.f('fk_deployments_storage_block_id_storage_blocks'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    sa.UniqueConstraint('flow_id', 'name', name=op.f('uq_deployments_flow_id_name'))
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_flow_id'), ['flow_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployments_storage_block_id'), ['storage_block_id'], unique=False)

    op.create_table('flow_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('flow_id', sa.String(length=36), nullable=False),
    sa.Column('deployment_id', sa.String(length=36), nullable=True),
    sa.Column('parameters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('state_type', sa.String(length=16), nullable=False),
    sa.Column('state_name', sa.String(length=64), nullable=False),
    sa.Column('state_message', sa.Text(), nullable=False),
    sa.Column('state_timestamp', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expected_start_time', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('start_time', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_time', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('total_run_time', sa.Float(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=300), nullable=True),
    sa.Column('flow_runner_type', sa.String(length=64), nullable=False),
    sa.Column('flow_runner_config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('auto_scheduled', sa.Boolean(), nullable=False),
    sa.Column('lease_id', sa.String(length=36), nullable=True),
    sa.Column('agent_id', sa.String(length=36), nullable=True),
    sa.Column('agent_name', sa.String(length=200), nullable=True),
    sa.Column('fencing_token', sa.BigInteger(), nullable=False),
    sa.Column('lease_expires', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('work_queue_id', sa.String(length=36), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_flow_runs_deployment_id_deployments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['flow_id'], ['flows.id'], name=op.f('fk_flow_runs_flow_id_flows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_runs')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_flow_runs_idempotency_key'))
    )
    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.create_index('ix_flow_runs_deployment_expected', ['deployment_id', 'expected_start_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_runs_flow_id'), ['flow_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_runs_name'), ['name'], unique=False)
        batch_op.create_index('ix_flow_runs_state_expected', ['state_type', 'expected_start_time'], unique=False)

    op.create_table('flow_run_states',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('timestamp', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_runs.id'], name=op.f('fk_flow_run_states_flow_run_id_flow_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_run_states'))
    )
    with op.batch_alter_table('flow_run_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_run_states_flow_run_id'), ['flow_run_id'], unique=False)

    op.create_table('logs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=False),
    sa.Column('timestamp', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('logger_name', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_runs.id'], name=op.f('fk_logs_flow_run_id_flow_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logs'))
    )
    with op.batch_alter_table('logs', schema=None) as batch_op:
        batch_op.create_index('ix_logs_run_time', ['flow_run_id', 'timestamp'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('logs', schema=None) as batch_op:
        batch_op.drop_index('ix_logs_run_time')

    op.drop_table('logs')
    with op.batch_alter_table('flow_run_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_run_states_flow_run_id'))

    op.drop_table('flow_run_states')
    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_runs_state_expected')
        batch_op.drop_index(batch_op.f('ix_flow_runs_name'))
        batch_op.drop_index(batch_op.f('ix_flow_runs_flow_id'))
        batch_op.drop_index('ix_flow_runs_deployment_expected')

    op.drop_table('flow_runs')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_storage_block_id'))
        batch_op.drop_index(batch_op.f('ix_deployments_flow_id'))

    op.drop_table('deployments')
    op.drop_table('work_queues')
    op.drop_table('storage_blocks')
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_log_created'))

    op.drop_table('request_log')
    op.drop_table('flows')
    op.drop_table('flow_data_blobs')
