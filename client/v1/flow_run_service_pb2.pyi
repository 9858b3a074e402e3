import datetime

from flowdeck.v1 import common_pb2 as _common_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlowRunWindow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_RUN_WINDOW_UNSPECIFIED: _ClassVar[FlowRunWindow]
    FLOW_RUN_WINDOW_STARTED_OR_DUE: _ClassVar[FlowRunWindow]
    FLOW_RUN_WINDOW_UPCOMING: _ClassVar[FlowRunWindow]
FLOW_RUN_WINDOW_UNSPECIFIED: FlowRunWindow
FLOW_RUN_WINDOW_STARTED_OR_DUE: FlowRunWindow
FLOW_RUN_WINDOW_UPCOMING: FlowRunWindow

class CreateFlowRunRequest(_message.Message):
    __slots__ = ("flow_run", "request_id")
    FLOW_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flow_run: _common_pb2.FlowRun
    request_id: str
    def __init__(self, flow_run: _Optional[_Union[_common_pb2.FlowRun, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateFlowRunFromDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id", "deployment_name", "parameters", "tags", "expected_start_time", "idempotency_key", "state", "name", "request_id")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    deployment_name: str
    parameters: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    expected_start_time: _timestamp_pb2.Timestamp
    idempotency_key: str
    state: _common_pb2.State
    name: str
    request_id: str
    def __init__(self, deployment_id: _Optional[str] = ..., deployment_name: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., expected_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.State, _Mapping]] = ..., name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetFlowRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFlowRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "flow_id", "flow_name", "deployment_id", "state_types", "tags", "expected_start_after", "expected_start_before", "name", "order_by", "state_names", "window")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_TYPES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_AFTER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    STATE_NAMES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    flow_id: str
    flow_name: str
    deployment_id: str
    state_types: _containers.RepeatedScalarFieldContainer[_common_pb2.StateType]
    tags: _containers.RepeatedScalarFieldContainer[str]
    expected_start_after: _timestamp_pb2.Timestamp
    expected_start_before: _timestamp_pb2.Timestamp
    name: str
    order_by: str
    state_names: _containers.RepeatedScalarFieldContainer[str]
    window: FlowRunWindow
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., flow_id: _Optional[str] = ..., flow_name: _Optional[str] = ..., deployment_id: _Optional[str] = ..., state_types: _Optional[_Iterable[_Union[_common_pb2.StateType, str]]] = ..., tags: _Optional[_Iterable[str]] = ..., expected_start_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_start_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., order_by: _Optional[str] = ..., state_names: _Optional[_Iterable[str]] = ..., window: _Optional[_Union[FlowRunWindow, str]] = ...) -> None: ...

class ListFlowRunsResponse(_message.Message):
    __slots__ = ("flow_runs", "next_page_token", "total_size")
    FLOW_RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    flow_runs: _containers.RepeatedCompositeFieldContainer[_common_pb2.FlowRun]
    next_page_token: str
    total_size: int
    def __init__(self, flow_runs: _Optional[_Iterable[_Union[_common_pb2.FlowRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class SetFlowRunStateRequest(_message.Message):
    __slots__ = ("flow_run_id", "state", "force", "fencing_token", "request_id")
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flow_run_id: str
    state: _common_pb2.State
    force: bool
    fencing_token: int
    request_id: str
    def __init__(self, flow_run_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.State, _Mapping]] = ..., force: _Optional[bool] = ..., fencing_token: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelFlowRunRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    request_id: str
    def __init__(self, id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteFlowRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
