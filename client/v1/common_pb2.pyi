import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_TYPE_UNSPECIFIED: _ClassVar[StateType]
    STATE_TYPE_SCHEDULED: _ClassVar[StateType]
    STATE_TYPE_PENDING: _ClassVar[StateType]
    STATE_TYPE_RUNNING: _ClassVar[StateType]
    STATE_TYPE_COMPLETED: _ClassVar[StateType]
    STATE_TYPE_FAILED: _ClassVar[StateType]
    STATE_TYPE_CANCELLED: _ClassVar[StateType]
    STATE_TYPE_CRASHED: _ClassVar[StateType]
STATE_TYPE_UNSPECIFIED: StateType
STATE_TYPE_SCHEDULED: StateType
STATE_TYPE_PENDING: StateType
STATE_TYPE_RUNNING: StateType
STATE_TYPE_COMPLETED: StateType
STATE_TYPE_FAILED: StateType
STATE_TYPE_CANCELLED: StateType
STATE_TYPE_CRASHED: StateType

class FlowData(_message.Message):
    __slots__ = ("encoding", "blob")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    encoding: str
    blob: str
    def __init__(self, encoding: _Optional[str] = ..., blob: _Optional[str] = ...) -> None: ...

class IntervalSchedule(_message.Message):
    __slots__ = ("interval", "anchor_date", "timezone")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_DATE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    anchor_date: _timestamp_pb2.Timestamp
    timezone: str
    def __init__(self, interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., anchor_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timezone: _Optional[str] = ...) -> None: ...

class CronSchedule(_message.Message):
    __slots__ = ("cron", "timezone", "day_or")
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    DAY_OR_FIELD_NUMBER: _ClassVar[int]
    cron: str
    timezone: str
    day_or: bool
    def __init__(self, cron: _Optional[str] = ..., timezone: _Optional[str] = ..., day_or: _Optional[bool] = ...) -> None: ...

class RRuleSchedule(_message.Message):
    __slots__ = ("rrule", "timezone")
    RRULE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    rrule: str
    timezone: str
    def __init__(self, rrule: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("interval", "cron", "rrule")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    RRULE_FIELD_NUMBER: _ClassVar[int]
    interval: IntervalSchedule
    cron: CronSchedule
    rrule: RRuleSchedule
    def __init__(self, interval: _Optional[_Union[IntervalSchedule, _Mapping]] = ..., cron: _Optional[_Union[CronSchedule, _Mapping]] = ..., rrule: _Optional[_Union[RRuleSchedule, _Mapping]] = ...) -> None: ...

class FlowRunnerSettings(_message.Message):
    __slots__ = ("type", "config")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    type: str
    config: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class State(_message.Message):
    __slots__ = ("type", "name", "message", "timestamp")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    type: StateType
    name: str
    message: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[StateType, str]] = ..., name: _Optional[str] = ..., message: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("id", "name", "created", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "created", "updated", "name", "flow_id", "flow_name", "flow_data", "schedule", "is_schedule_active", "parameters", "tags", "flow_runner", "description", "catchup", "max_lateness", "storage_block_id", "next_run_time", "parameter_schema", "last_run")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_DATA_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    IS_SCHEDULE_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUNNER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENESS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    name: str
    flow_id: str
    flow_name: str
    flow_data: FlowData
    schedule: Schedule
    is_schedule_active: bool
    parameters: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    flow_runner: FlowRunnerSettings
    description: str
    catchup: bool
    max_lateness: _duration_pb2.Duration
    storage_block_id: str
    next_run_time: _timestamp_pb2.Timestamp
    parameter_schema: _struct_pb2.Struct
    last_run: FlowRunSummary
    def __init__(self, id: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., flow_id: _Optional[str] = ..., flow_name: _Optional[str] = ..., flow_data: _Optional[_Union[FlowData, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., is_schedule_active: _Optional[bool] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., flow_runner: _Optional[_Union[FlowRunnerSettings, _Mapping]] = ..., description: _Optional[str] = ..., catchup: _Optional[bool] = ..., max_lateness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., storage_block_id: _Optional[str] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parameter_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., last_run: _Optional[_Union[FlowRunSummary, _Mapping]] = ...) -> None: ...

class FlowRunSummary(_message.Message):
    __slots__ = ("id", "name", "state", "expected_start_time", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: State
    expected_start_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[State, _Mapping]] = ..., expected_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("lease_id", "agent_id", "agent_name", "fencing_token", "expire_time")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    agent_id: str
    agent_name: str
    fencing_token: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, lease_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_name: _Optional[str] = ..., fencing_token: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FlowRun(_message.Message):
    __slots__ = ("id", "name", "flow_id", "flow_name", "deployment_id", "parameters", "tags", "state", "expected_start_time", "start_time", "end_time", "total_run_time", "idempotency_key", "flow_runner", "created", "updated", "state_history", "lease", "auto_scheduled")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUNNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    STATE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    AUTO_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    flow_id: str
    flow_name: str
    deployment_id: str
    parameters: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    state: State
    expected_start_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    total_run_time: _duration_pb2.Duration
    idempotency_key: str
    flow_runner: FlowRunnerSettings
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    state_history: _containers.RepeatedCompositeFieldContainer[State]
    lease: Lease
    auto_scheduled: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., flow_id: _Optional[str] = ..., flow_name: _Optional[str] = ..., deployment_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[State, _Mapping]] = ..., expected_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_run_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., flow_runner: _Optional[_Union[FlowRunnerSettings, _Mapping]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_history: _Optional[_Iterable[_Union[State, _Mapping]]] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ..., auto_scheduled: _Optional[bool] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("flow_run_id", "timestamp", "level", "logger_name", "message")
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    LOGGER_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    flow_run_id: str
    timestamp: _timestamp_pb2.Timestamp
    level: int
    logger_name: str
    message: str
    def __init__(self, flow_run_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., level: _Optional[int] = ..., logger_name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class WorkQueueFilter(_message.Message):
    __slots__ = ("tags", "deployment_ids", "flow_runner_types")
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUNNER_TYPES_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    deployment_ids: _containers.RepeatedScalarFieldContainer[str]
    flow_runner_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tags: _Optional[_Iterable[str]] = ..., deployment_ids: _Optional[_Iterable[str]] = ..., flow_runner_types: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkQueue(_message.Message):
    __slots__ = ("id", "name", "description", "filter", "is_paused", "concurrency_limit", "created", "updated", "late_runs", "running_runs")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    IS_PAUSED_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    LATE_RUNS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_RUNS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    filter: WorkQueueFilter
    is_paused: bool
    concurrency_limit: int
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    late_runs: int
    running_runs: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., filter: _Optional[_Union[WorkQueueFilter, _Mapping]] = ..., is_paused: _Optional[bool] = ..., concurrency_limit: _Optional[int] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., late_runs: _Optional[int] = ..., running_runs: _Optional[int] = ...) -> None: ...

class StorageBlock(_message.Message):
    __slots__ = ("id", "type", "config", "is_default", "created", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    config: _struct_pb2.Struct
    is_default: bool
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., is_default: _Optional[bool] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ErrorInfo(_message.Message):
    __slots__ = ("reason", "domain", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REASON_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    reason: str
    domain: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, reason: _Optional[str] = ..., domain: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
