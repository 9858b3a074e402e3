"""gRPC's four handler kinds, for interceptors that wrap a handler whatever its kind."""
from __future__ import annotations

import grpc

KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
HANDLER_FOR = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def kind_of(handler) -> str:
    return next(k for k in KINDS if getattr(handler, k) is not None)


def rewrapped(handler, kind: str, behavior):
    """`handler` with `behavior` in place of its own, serializers kept."""
    return HANDLER_FOR[kind](behavior, handler.request_deserializer, handler.response_serializer)
