import datetime

from flowdeck.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LeaseRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "ack", "release")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    heartbeat: AgentHeartbeat
    ack: LeaseAck
    release: LeaseRelease
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ..., ack: _Optional[_Union[LeaseAck, _Mapping]] = ..., release: _Optional[_Union[LeaseRelease, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("agent_id", "agent_name", "work_queues", "capacity", "lease_ttl")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    WORK_QUEUES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    agent_name: str
    work_queues: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    lease_ttl: _duration_pb2.Duration
    def __init__(self, agent_id: _Optional[str] = ..., agent_name: _Optional[str] = ..., work_queues: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("flow_run_ids",)
    FLOW_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    flow_run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, flow_run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LeaseAck(_message.Message):
    __slots__ = ("lease_ids",)
    LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lease_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LeaseRelease(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class LeaseResponse(_message.Message):
    __slots__ = ("welcome", "leased_run", "cancel_run")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    LEASED_RUN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_RUN_FIELD_NUMBER: _ClassVar[int]
    welcome: AgentWelcome
    leased_run: LeasedRun
    cancel_run: CancelRun
    def __init__(self, welcome: _Optional[_Union[AgentWelcome, _Mapping]] = ..., leased_run: _Optional[_Union[LeasedRun, _Mapping]] = ..., cancel_run: _Optional[_Union[CancelRun, _Mapping]] = ...) -> None: ...

class AgentWelcome(_message.Message):
    __slots__ = ("agent_id", "lease_ttl")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    lease_ttl: _duration_pb2.Duration
    def __init__(self, agent_id: _Optional[str] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeasedRun(_message.Message):
    __slots__ = ("lease", "flow_run", "deployment", "flow_data", "flow_runner", "storage_config", "storage_type", "server_time", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEASE_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    FLOW_DATA_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUNNER_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STORAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    lease: _common_pb2.Lease
    flow_run: _common_pb2.FlowRun
    deployment: _common_pb2.Deployment
    flow_data: _common_pb2.FlowData
    flow_runner: _common_pb2.FlowRunnerSettings
    storage_config: _struct_pb2.Struct
    storage_type: str
    server_time: _timestamp_pb2.Timestamp
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, lease: _Optional[_Union[_common_pb2.Lease, _Mapping]] = ..., flow_run: _Optional[_Union[_common_pb2.FlowRun, _Mapping]] = ..., deployment: _Optional[_Union[_common_pb2.Deployment, _Mapping]] = ..., flow_data: _Optional[_Union[_common_pb2.FlowData, _Mapping]] = ..., flow_runner: _Optional[_Union[_common_pb2.FlowRunnerSettings, _Mapping]] = ..., storage_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., storage_type: _Optional[str] = ..., server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CancelRun(_message.Message):
    __slots__ = ("flow_run_id", "lease_id")
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    flow_run_id: str
    lease_id: str
    def __init__(self, flow_run_id: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...
