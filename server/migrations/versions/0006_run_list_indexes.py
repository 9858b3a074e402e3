"""flow_runs indexes in the Lists' (expected_start_time, id) order

The runs list sorted 100,000 rows for a page: nothing indexed
expected_start_time alone, and the (state_type | deployment_id,
expected_start_time) indexes lacked the id tiebreak of the page order. Each
filter the Lists take by equality (state type, deployment, flow) now has an
index in that order, and a deployment's next run is one probe.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Plain CREATE/DROP INDEX on both backends (no batch mode: SQLite would copy the table).
NEW = {
    'ix_flow_runs_expected': ['expected_start_time', 'id'],
    'ix_flow_runs_state_expected': ['state_type', 'expected_start_time', 'id'],
    'ix_flow_runs_deployment_expected': ['deployment_id', 'expected_start_time', 'id'],
    'ix_flow_runs_deployment_state_expected': ['deployment_id', 'state_type', 'expected_start_time', 'id'],
    'ix_flow_runs_flow_expected': ['flow_id', 'expected_start_time', 'id'],
}
OLD = {
    'ix_flow_runs_state_expected': ['state_type', 'expected_start_time'],
    'ix_flow_runs_deployment_expected': ['deployment_id', 'expected_start_time'],
    'ix_flow_runs_flow_id': ['flow_id'],
}


def _replace(drop: dict, create: dict) -> None:
    for name in drop:
        op.drop_index(name, table_name='flow_runs')
    for name, columns in create.items():
        op.create_index(name, 'flow_runs', columns, unique=False)


def upgrade() -> None:
    _replace(OLD, NEW)


def downgrade() -> None:
    _replace(NEW, OLD)
