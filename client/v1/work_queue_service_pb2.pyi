from flowdeck.v1 import common_pb2 as _common_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateWorkQueueRequest(_message.Message):
    __slots__ = ("work_queue", "request_id")
    WORK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    work_queue: _common_pb2.WorkQueue
    request_id: str
    def __init__(self, work_queue: _Optional[_Union[_common_pb2.WorkQueue, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetWorkQueueRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetWorkQueueByNameRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListWorkQueuesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkQueuesResponse(_message.Message):
    __slots__ = ("work_queues", "next_page_token")
    WORK_QUEUES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    work_queues: _containers.RepeatedCompositeFieldContainer[_common_pb2.WorkQueue]
    next_page_token: str
    def __init__(self, work_queues: _Optional[_Iterable[_Union[_common_pb2.WorkQueue, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateWorkQueueRequest(_message.Message):
    __slots__ = ("work_queue", "update_mask", "request_id")
    WORK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    work_queue: _common_pb2.WorkQueue
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, work_queue: _Optional[_Union[_common_pb2.WorkQueue, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteWorkQueueRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class PreviewWorkQueueRequest(_message.Message):
    __slots__ = ("id", "within_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    WITHIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    within_seconds: int
    def __init__(self, id: _Optional[str] = ..., within_seconds: _Optional[int] = ...) -> None: ...

class PreviewWorkQueueResponse(_message.Message):
    __slots__ = ("flow_runs", "truncated")
    FLOW_RUNS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    flow_runs: _containers.RepeatedCompositeFieldContainer[_common_pb2.FlowRun]
    truncated: bool
    def __init__(self, flow_runs: _Optional[_Iterable[_Union[_common_pb2.FlowRun, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
