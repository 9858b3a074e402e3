"""Typed models the client returns; users never see generated `_pb2` classes.

`model_dump(mode="json")` is what `--json` prints: snake_case names as in the
proto, every field present, enums as short names, times ISO 8601 with offset,
durations in seconds.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel as _PydanticModel
from pydantic import ConfigDict, Field

from flowdeck.core.states import TERMINAL as TERMINAL_STATES

__all__ = [
    "ApiKey", "Deployment", "Flow", "FlowData", "FlowRun", "FlowRunSummary", "FlowRunnerSettings", "Lease",
    "LogRecord", "State", "StateType", "StorageBlock", "TERMINAL_STATES", "WorkQueue", "WorkQueueFilter",
]

StateType = Literal["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"]


class BaseModel(_PydanticModel):
    # Build validators on first use, not at import: the CLI imports every model
    # but a command touches two or three of them.
    model_config = ConfigDict(defer_build=True)


class FlowData(BaseModel):
    encoding: str = ""
    blob: str = ""


class FlowRunnerSettings(BaseModel):
    type: str = "universal"
    config: dict[str, Any] = Field(default_factory=dict)


class State(BaseModel):
    type: StateType
    name: str = ""
    message: str = ""
    timestamp: dt.datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_STATES


class Flow(BaseModel):
    id: str
    name: str
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class FlowRunSummary(BaseModel):
    """A flow run in brief, as a deployment shows its last run."""

    id: str
    name: str = ""
    state: State
    expected_start_time: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


class Deployment(BaseModel):
    id: str
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    name: str
    flow_id: str
    flow_name: str = ""
    flow_data: FlowData = Field(default_factory=FlowData)
    schedule: dict[str, Any] | None = None
    is_schedule_active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    # JSON Schema of the flow's parameters; None: the server does not check them.
    parameter_schema: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    flow_runner: FlowRunnerSettings = Field(default_factory=FlowRunnerSettings)
    description: str = ""
    catchup: bool = False
    max_lateness: float | None = None
    storage_block_id: str | None = None
    next_run_time: dt.datetime | None = None
    # Its latest run that has left SCHEDULED; None: none has yet.
    last_run: FlowRunSummary | None = None

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


class Lease(BaseModel):
    lease_id: str
    agent_id: str = ""
    agent_name: str = ""
    fencing_token: int = 0
    expire_time: dt.datetime | None = None


class FlowRun(BaseModel):
    id: str
    name: str
    flow_id: str
    flow_name: str = ""
    deployment_id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    state: State
    expected_start_time: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    total_run_time: float = 0.0
    idempotency_key: str | None = None
    flow_runner: FlowRunnerSettings = Field(default_factory=FlowRunnerSettings)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    state_history: list[State] = Field(default_factory=list)
    lease: Lease | None = None
    auto_scheduled: bool = False


class LogRecord(BaseModel):
    flow_run_id: str
    timestamp: dt.datetime
    level: int = 20
    logger_name: str = ""
    message: str = ""


class WorkQueueFilter(BaseModel):
    tags: list[str] = Field(default_factory=list)
    deployment_ids: list[str] = Field(default_factory=list)
    flow_runner_types: list[str] = Field(default_factory=list)


class WorkQueue(BaseModel):
    id: str
    name: str
    description: str = ""
    filter: WorkQueueFilter = Field(default_factory=WorkQueueFilter)
    is_paused: bool = False
    concurrency_limit: int | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    # Late runs that match the queue; runs leased through it, PENDING or RUNNING.
    late_runs: int = 0
    running_runs: int = 0


class StorageBlock(BaseModel):
    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    is_default: bool = False
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class ApiKey(BaseModel):
    """An API key without its secret (the secret is shown once, at creation)."""

    id: str
    name: str
    scope: Literal["read", "write", "agent", "admin"]
    created: dt.datetime | None = None
    revoked: dt.datetime | None = None
    created_by: str = ""
