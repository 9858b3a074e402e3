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

StateType = Literal["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"]
TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


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
    tags: list[str] = Field(default_factory=list)
    flow_runner: FlowRunnerSettings = Field(default_factory=FlowRunnerSettings)
    description: str = ""
    catchup: bool = False
    max_lateness: float | None = None
    storage_block_id: str | None = None
    next_run_time: dt.datetime | None = None

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


class StorageBlock(BaseModel):
    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    is_default: bool = False
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


# -- from generated messages --------------------------------------------------

def _ts(msg, field: str) -> dt.datetime | None:
    if not msg.HasField(field):
        return None
    return getattr(msg, field).ToDatetime(tzinfo=dt.timezone.utc)


def plain_numbers(value):
    """Struct numbers are doubles; give integral ones back as ints (3, not 3.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def struct_dict(msg) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return plain_numbers(MessageToDict(msg))


def _state_name(value: int) -> str:
    from flowdeck.v1 import common_pb2

    return common_pb2.StateType.Name(value).removeprefix("STATE_TYPE_")


def state_from_pb(msg) -> State:
    return State(type=_state_name(msg.type), name=msg.name, message=msg.message,
                 timestamp=_ts(msg, "timestamp"))


def flow_from_pb(msg) -> Flow:
    return Flow(id=msg.id, name=msg.name, created=_ts(msg, "created"), updated=_ts(msg, "updated"))


def runner_from_pb(msg) -> FlowRunnerSettings:
    return FlowRunnerSettings(type=msg.type, config=struct_dict(msg.config))


def deployment_from_pb(msg) -> Deployment:
    schedule = None
    if msg.HasField("schedule") and msg.schedule.WhichOneof("kind"):
        from flowdeck.schedules import schedule_from_proto

        schedule = schedule_from_proto(msg.schedule).to_dict()
    return Deployment(
        id=msg.id,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
        name=msg.name,
        flow_id=msg.flow_id,
        flow_name=msg.flow_name,
        flow_data=FlowData(encoding=msg.flow_data.encoding, blob=msg.flow_data.blob),
        schedule=schedule,
        is_schedule_active=msg.is_schedule_active if msg.HasField("is_schedule_active") else True,
        parameters=struct_dict(msg.parameters),
        tags=list(msg.tags),
        flow_runner=runner_from_pb(msg.flow_runner),
        description=msg.description,
        catchup=msg.catchup,
        max_lateness=msg.max_lateness.ToTimedelta().total_seconds() if msg.HasField("max_lateness") else None,
        storage_block_id=msg.storage_block_id or None,
        next_run_time=_ts(msg, "next_run_time"),
    )


def flow_run_from_pb(msg) -> FlowRun:
    lease = None
    if msg.HasField("lease") and msg.lease.lease_id:
        lease = Lease(
            lease_id=msg.lease.lease_id,
            agent_id=msg.lease.agent_id,
            agent_name=msg.lease.agent_name,
            fencing_token=msg.lease.fencing_token,
            expire_time=_ts(msg.lease, "expire_time"),
        )
    return FlowRun(
        id=msg.id,
        name=msg.name,
        flow_id=msg.flow_id,
        flow_name=msg.flow_name,
        deployment_id=msg.deployment_id or None,
        parameters=struct_dict(msg.parameters),
        tags=list(msg.tags),
        state=state_from_pb(msg.state),
        expected_start_time=_ts(msg, "expected_start_time"),
        start_time=_ts(msg, "start_time"),
        end_time=_ts(msg, "end_time"),
        total_run_time=msg.total_run_time.ToTimedelta().total_seconds(),
        idempotency_key=msg.idempotency_key or None,
        flow_runner=runner_from_pb(msg.flow_runner),
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
        state_history=[state_from_pb(s) for s in msg.state_history],
        lease=lease,
        auto_scheduled=msg.auto_scheduled,
    )


def log_from_pb(msg) -> LogRecord:
    return LogRecord(
        flow_run_id=msg.flow_run_id,
        timestamp=_ts(msg, "timestamp"),
        level=msg.level,
        logger_name=msg.logger_name,
        message=msg.message,
    )


def work_queue_from_pb(msg) -> WorkQueue:
    return WorkQueue(
        id=msg.id,
        name=msg.name,
        description=msg.description,
        filter=WorkQueueFilter(
            tags=list(msg.filter.tags),
            deployment_ids=list(msg.filter.deployment_ids),
            flow_runner_types=list(msg.filter.flow_runner_types),
        ),
        is_paused=msg.is_paused,
        concurrency_limit=msg.concurrency_limit if msg.HasField("concurrency_limit") else None,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
    )


def storage_block_from_pb(msg) -> StorageBlock:
    return StorageBlock(
        id=msg.id,
        type=msg.type,
        config=struct_dict(msg.config),
        is_default=msg.is_default,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
    )


class ApiKey(BaseModel):
    """An API key without its secret (the secret is shown once, at creation)."""

    id: str
    name: str
    scope: Literal["read", "write", "agent", "admin"]
    created: dt.datetime | None = None
    revoked: dt.datetime | None = None
    created_by: str = ""


def api_key_from_pb(msg) -> ApiKey:
    from flowdeck.v1 import api_key_service_pb2 as akpb

    return ApiKey(
        id=msg.id,
        name=msg.name,
        scope=akpb.ApiKeyScope.Name(msg.scope).removeprefix("API_KEY_SCOPE_").lower(),
        created=_ts(msg, "created"),
        revoked=_ts(msg, "revoked"),
        created_by=msg.created_by,
    )
