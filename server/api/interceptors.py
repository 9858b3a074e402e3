"""The one place domain errors become gRPC statuses.

A status carries its details the standard way, as a `google.rpc.Status` in the
`grpc-status-details-bin` trailer, so any gRPC library decodes them: an
`ErrorInfo` (reason, domain, metadata) on every error, plus a `BadRequest` with
the field violations on INVALID_ARGUMENT.
"""
from __future__ import annotations

import logging

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy.exc import OperationalError

from flowdeck.core import errors
from flowdeck.server.api.convert import find_nul
from flowdeck.server.api.handlers import kind_of, rewrapped
from flowdeck.v1 import common_pb2

log = logging.getLogger("flowdeck.server.api")

# Deprecated: the flowdeck.v1.ErrorInfo trailer that came before the standard
# details; still sent for this release so older clients keep their reasons.
LEGACY_ERROR_INFO_KEY = "flowdeck-error-info-bin"
LEGACY_ERROR_DOMAIN = "flowdeck"

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
    errors.DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.DataLossError: grpc.StatusCode.DATA_LOSS,
    errors.CancelledError: grpc.StatusCode.CANCELLED,
    errors.UnimplementedError: grpc.StatusCode.UNIMPLEMENTED,
    errors.ServerError: grpc.StatusCode.INTERNAL,
}


def _code_for(exc: BaseException) -> grpc.StatusCode | None:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return None


def domain_error(exc: BaseException) -> errors.FlowdeckError:
    """`exc` as a domain error with a status in the table; what is not one yet
    (an unimplemented RPC, a database outage, a bug) becomes one here."""
    if _code_for(exc) is not None:
        return exc
    if isinstance(exc, NotImplementedError):
        # The generated base servicer's answer for an RPC nobody implemented.
        return errors.UnimplementedError("method not implemented", reason="METHOD_NOT_IMPLEMENTED")
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc.orig if exc.orig else exc)
        return errors.UnavailableError("the database is unavailable; retry", reason="DATABASE_UNAVAILABLE")
    log.error("unexpected error", exc_info=exc)
    return errors.ServerError("internal error (see the server log)", reason="UNEXPECTED_SERVER_ERROR")


def rich_status(err: errors.FlowdeckError, code: grpc.StatusCode) -> status_pb2.Status:
    """The google.rpc.Status for a domain error: ErrorInfo, and BadRequest for field violations."""
    status = status_pb2.Status(code=code.value[0], message=err.message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(
        reason=err.reason, domain=errors.ERROR_DOMAIN, metadata=err.metadata))
    violations = getattr(err, "violations", None)
    if violations:
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]))
    return status


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple]:
    """The status code, message and trailing metadata an exception is sent as."""
    err = domain_error(exc)
    status = rpc_status.to_status(rich_status(err, _code_for(err)))
    legacy = common_pb2.ErrorInfo(reason=err.reason, domain=LEGACY_ERROR_DOMAIN, metadata=err.metadata)
    return status.code, status.details, (*status.trailing_metadata,
                                         (LEGACY_ERROR_INFO_KEY, legacy.SerializeToString()))


async def _abort(context, exc):
    code, message, trailing = status_for(exc)
    await context.abort(code, message, trailing)


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
        kind = kind_of(handler)
        return rewrapped(handler, kind, _guarded(getattr(handler, kind), kind))


def _guarded(inner, kind: str):
    """The handler with its errors turned into statuses. A server stream stays
    an async generator (the interceptors outside iterate it); a single request
    is checked before the handler sees it (a client stream's messages are
    checked as they come, by the request limits)."""
    check = (lambda request: None) if kind.startswith("stream") else check_request

    if kind.endswith("stream"):
        async def guarded_stream(request, context):
            try:
                check(request)
                async for item in inner(request, context):
                    yield item
            except Exception as exc:
                await _status_for_error(context, exc)

        return guarded_stream

    async def guarded(request, context):
        try:
            check(request)
            return await inner(request, context)
        except Exception as exc:
            await _status_for_error(context, exc)

    return guarded


async def _status_for_error(context, exc: Exception) -> None:
    if _is_abort(exc):
        raise exc
    await _abort(context, exc)
