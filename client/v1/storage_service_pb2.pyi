from flowdeck.v1 import common_pb2 as _common_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateStorageBlockRequest(_message.Message):
    __slots__ = ("storage_block", "request_id")
    STORAGE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    storage_block: _common_pb2.StorageBlock
    request_id: str
    def __init__(self, storage_block: _Optional[_Union[_common_pb2.StorageBlock, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetStorageBlockRequest(_message.Message):
    __slots__ = ("id", "reveal_secrets")
    ID_FIELD_NUMBER: _ClassVar[int]
    REVEAL_SECRETS_FIELD_NUMBER: _ClassVar[int]
    id: str
    reveal_secrets: bool
    def __init__(self, id: _Optional[str] = ..., reveal_secrets: _Optional[bool] = ...) -> None: ...

class ListStorageBlocksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStorageBlocksResponse(_message.Message):
    __slots__ = ("storage_blocks", "next_page_token")
    STORAGE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    storage_blocks: _containers.RepeatedCompositeFieldContainer[_common_pb2.StorageBlock]
    next_page_token: str
    def __init__(self, storage_blocks: _Optional[_Iterable[_Union[_common_pb2.StorageBlock, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteStorageBlockRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SetDefaultStorageBlockRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    request_id: str
    def __init__(self, id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetDefaultStorageBlockRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
