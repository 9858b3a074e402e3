from flowdeck.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlowDataMetadata(_message.Message):
    __slots__ = ("flow_name", "filename", "size", "storage_block_id")
    FLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    flow_name: str
    filename: str
    size: int
    storage_block_id: str
    def __init__(self, flow_name: _Optional[str] = ..., filename: _Optional[str] = ..., size: _Optional[int] = ..., storage_block_id: _Optional[str] = ...) -> None: ...

class UploadFlowDataRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: FlowDataMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[FlowDataMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadFlowDataResponse(_message.Message):
    __slots__ = ("flow_data", "sha256", "size", "created")
    FLOW_DATA_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    flow_data: _common_pb2.FlowData
    sha256: str
    size: int
    created: bool
    def __init__(self, flow_data: _Optional[_Union[_common_pb2.FlowData, _Mapping]] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class DownloadFlowDataRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class DownloadFlowDataResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    def __init__(self, chunk: _Optional[bytes] = ...) -> None: ...
