"""The one place domain errors become gRPC statuses."""
from __future__ import annotations

import logging

import grpc
from sqlalchemy.exc import OperationalError

from flowdeck.core import errors
from flowdeck.server.api.convert import find_nul
from flowdeck.v1 import common_pb2

log = logging.getLogger("flowdeck.server.api")

ERROR_INFO_KEY = "flowdeck-error-info-bin"

# Domain error -> gRPC status code. The only table.
STATUS_FOR = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.AbortedError: grpc.StatusCode.ABORTED,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.DataLossError: grpc.StatusCode.DATA_LOSS,
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple]:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            info = common_pb2.ErrorInfo(reason=exc.reason, domain="flowdeck", metadata=exc.metadata)
            return STATUS_FOR[cls], exc.message, ((ERROR_INFO_KEY, info.SerializeToString()),)
    if isinstance(exc, NotImplementedError):
        # The generated base servicer's answer for an RPC nobody implemented yet.
        return grpc.StatusCode.UNIMPLEMENTED, "method not implemented", ()
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc.orig if exc.orig else exc)
        return grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry", ()
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error (see the server log)", ()


async def _abort(context, exc):
    code, message, trailing = status_for(exc)
    if trailing:
        context.set_trailing_metadata(trailing)
    await context.abort(code, message)


def check_request(request) -> None:
    """Checks every request gets before its handler runs."""
    found = find_nul(request)
    if found:
        raise errors.invalid_field(found[0], found[1], "must not contain NUL characters")


def _is_abort(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AbortError) or type(exc).__name__ in ("AbortError", "UsageError")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler so a raised error becomes the right status."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if not handler_call_details.method.startswith("/flowdeck."):
            # grpc's own services (health, reflection) report their own errors;
            # Health.Watch is a coroutine writing with context.write, not a generator.
            return handler
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary_unary(request, context):
                try:
                    check_request(request)
                    return await inner(request, context)
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    await _abort(context, exc)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request, context):
                try:
                    check_request(request)
                    async for item in inner_us(request, context):
                        yield item
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    await _abort(context, exc)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            inner_su = handler.stream_unary

            async def stream_unary(request_iterator, context):
                try:
                    return await inner_su(request_iterator, context)
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    await _abort(context, exc)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer
            )
        inner_ss = handler.stream_stream

        async def stream_stream(request_iterator, context):
            try:
                async for item in inner_ss(request_iterator, context):
                    yield item
            except Exception as exc:
                if _is_abort(exc):
                    raise
                await _abort(context, exc)

        return grpc.stream_stream_rpc_method_handler(
            stream_stream, handler.request_deserializer, handler.response_serializer
        )
