"""What read paths return: typed, read-only views of stored rows.

A view holds a row's columns plus what the API shows beside them (a run's or
deployment's flow name, a deployment's next run time, a run's state history),
so nothing patches attributes onto ORM rows. Each view comes with the one
SELECT that reads it, so "join the flow for its name" is written once.
"""
from __future__ import annotations

import datetime as dt
import operator
from typing import Any, NamedTuple

from sqlalchemy import func, select

from flowdeck.core import states
from flowdeck.server.models import DeploymentRow, FlowRow, FlowRunRow

_RUNS = FlowRunRow.__table__
_DEPLOYMENTS = DeploymentRow.__table__
_FLOWS = FlowRow.__table__


class StateRecord(NamedTuple):
    """One entry of a run's state history."""

    type: str
    name: str
    message: str
    timestamp: dt.datetime


class FlowRunView(NamedTuple):
    """A run's columns, then its flow's name and (when asked for) its state history."""

    id: str
    name: str
    flow_id: str
    deployment_id: str | None
    parameters: dict
    tags: list
    state_type: str
    state_name: str
    state_message: str
    state_timestamp: dt.datetime
    expected_start_time: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    total_run_time: float
    idempotency_key: str | None
    flow_runner_type: str
    flow_runner_config: dict
    auto_scheduled: bool
    lease_id: str | None
    agent_id: str | None
    agent_name: str | None
    fencing_token: int
    lease_expires: dt.datetime | None
    work_queue_id: str | None
    cancel_requested: bool
    created: dt.datetime
    updated: dt.datetime
    flow_name: str
    history: tuple[StateRecord, ...] = ()

    @classmethod
    def of(cls, row: FlowRunRow, flow_name: str, history: tuple[StateRecord, ...] = ()) -> "FlowRunView":
        """The view of an ORM row (one just changed in this transaction)."""
        return cls(*_run_columns_of(row), flow_name, history)

    @classmethod
    def from_values(cls, values: dict[str, Any], flow_name: str) -> "FlowRunView":
        """The view of a run just inserted with `values` (columns it leaves out are NULL)."""
        return cls(*[values.get(f) for f in _RUN_COLUMNS], flow_name)


class RunSummary(NamedTuple):
    """A run in brief: what a deployment shows of its last run."""

    id: str
    name: str
    state_type: str
    state_name: str
    state_timestamp: dt.datetime
    expected_start_time: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None


class DeploymentView(NamedTuple):
    """A deployment's columns, then its flow's name, its next run's time and its last run."""

    id: str
    flow_id: str
    name: str
    description: str
    flow_data_encoding: str
    flow_data_blob: str
    schedule: dict | None
    is_schedule_active: bool
    parameters: dict
    parameter_schema: dict | None
    tags: list
    flow_runner_type: str
    flow_runner_config: dict
    catchup: bool
    max_lateness_seconds: float | None
    storage_block_id: str | None
    created: dt.datetime
    updated: dt.datetime
    flow_name: str
    next_run_time: dt.datetime | None = None
    last_run: RunSummary | None = None

    @classmethod
    def of(cls, row: DeploymentRow, flow_name: str) -> "DeploymentView":
        """The view of an ORM row of a deployment without runs (no next or last run)."""
        return cls(*_deployment_columns_of(row), flow_name)

    @classmethod
    def from_row(cls, row) -> "DeploymentView":
        """The view of a DEPLOYMENTS row: its columns, then the last run's (all NULL: none)."""
        last = row[_LAST_RUN_AT:]
        return cls(*row[:_LAST_RUN_AT], RunSummary(*last) if last[0] is not None else None)


class StorageBlockView(NamedTuple):
    """A storage block as the API shows it: config with its secrets masked."""

    id: str
    type: str
    config: dict
    is_default: bool
    created: dt.datetime
    updated: dt.datetime


# The stored columns of each view come first (the others are computed by its SELECT).
_RUN_COLUMNS = FlowRunView._fields[:FlowRunView._fields.index("flow_name")]
_DEPLOYMENT_COLUMNS = DeploymentView._fields[:DeploymentView._fields.index("flow_name")]
_run_columns_of = operator.attrgetter(*_RUN_COLUMNS)
_deployment_columns_of = operator.attrgetter(*_DEPLOYMENT_COLUMNS)

# A deployment's next run: its earliest SCHEDULED run (the API's next_run_time).
NEXT_RUN_TIME = (
    select(func.min(_RUNS.c.expected_start_time))
    .where(_RUNS.c.deployment_id == _DEPLOYMENTS.c.id, _RUNS.c.state_type == states.SCHEDULED)
    .scalar_subquery()
)
# Its last run: the latest (by expected start, then id) that has left SCHEDULED.
# One step back along ix_flow_runs_deployment_expected, past its upcoming runs.
LAST_RUN_ID = (
    select(_RUNS.c.id)
    .where(_RUNS.c.deployment_id == _DEPLOYMENTS.c.id, _RUNS.c.state_type != states.SCHEDULED)
    .order_by(_RUNS.c.expected_start_time.desc(), _RUNS.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_LAST_RUN = _RUNS.alias("last_run")


def _column(table, field: str):
    return _FLOWS.c.name.label("flow_name") if field == "flow_name" else table.c[field]


# SELECTs whose rows construct the views: FlowRunView(*row), DeploymentView(*row)
# (DEPLOYMENTS_STORED) and DeploymentView.from_row(row) (DEPLOYMENTS).
FLOW_RUNS = select(*[_column(_RUNS, f) for f in FlowRunView._fields if f != "history"]).join_from(
    _RUNS, _FLOWS, _FLOWS.c.id == _RUNS.c.flow_id)
# Without the next and last runs (each a query of its own per deployment) where neither is shown.
DEPLOYMENTS_STORED = select(
    *[_column(_DEPLOYMENTS, f) for f in DeploymentView._fields if f not in ("next_run_time", "last_run")],
).join_from(_DEPLOYMENTS, _FLOWS, _FLOWS.c.id == _DEPLOYMENTS.c.flow_id)
DEPLOYMENTS = DEPLOYMENTS_STORED.add_columns(
    NEXT_RUN_TIME.label("next_run_time"),
    *[_LAST_RUN.c[f].label(f"last_run_{f}") for f in RunSummary._fields],
).outerjoin(_LAST_RUN, _LAST_RUN.c.id == LAST_RUN_ID)
_LAST_RUN_AT = DeploymentView._fields.index("last_run")

