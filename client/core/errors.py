"""Domain errors: one hierarchy for the server, the client and the agent.

The server raises them below its servicers; one interceptor maps each class to
its gRPC status (`code`) and sends `reason`, `metadata` and, for invalid
arguments, the field violations in the standard `google.rpc.Status` details.
The client raises the same classes when it reads a status back.
"""
from __future__ import annotations

from typing import Any

ERROR_DOMAIN = "flowdeck.dev"
"""The `domain` of every google.rpc.ErrorInfo flowdeck sends."""


class FlowdeckError(Exception):
    """Base of every error a caller can cause; str() is a one-line cause."""

    code = "UNKNOWN"
    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        merged = dict(metadata or {})
        merged.update(extra)
        self.metadata = {k: str(v) for k, v in merged.items()}

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls, message, state):
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class FieldViolation(tuple):
    """One bad field: its path (`deployment.schedule.cron`) and what is wrong."""

    __slots__ = ()

    def __new__(cls, field: str, description: str):
        return super().__new__(cls, (field, description))

    @property
    def field(self) -> str:
        return self[0]

    @property
    def description(self) -> str:
        return self[1]


class InvalidArgumentError(FlowdeckError, ValueError):
    code = "INVALID_ARGUMENT"
    reason = "INVALID_FIELD"

    def __init__(self, message: str, *, field: str = "", violations: list[FieldViolation] | None = None,
                 reason: str | None = None, metadata: dict | None = None, **extra: Any):
        if field and "field" not in extra and not (metadata and "field" in metadata):
            extra["field"] = field
        super().__init__(message, reason=reason, metadata=metadata, **extra)
        self.field = field
        self.violations = list(violations) if violations else ([FieldViolation(field, message)] if field else [])


def show_value(value: object) -> str:
    """A value as an error message shows it: numbers bare, the rest repr'd, long ones cut."""
    shown = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return shown


def invalid_field(field: str, value: object, problem: str, *, reason: str | None = None) -> InvalidArgumentError:
    """`invalid FIELD VALUE: PROBLEM`, with FIELD as the field violation."""
    err = InvalidArgumentError(f"invalid {field} {show_value(value)}: {problem}", field=field, reason=reason)
    err.value = value
    err.violations = [FieldViolation(field, f"{show_value(value)}: {problem}")]
    return err


class NotFoundError(FlowdeckError, LookupError):
    code = "NOT_FOUND"
    reason = "RESOURCE_NOT_FOUND"


class AlreadyExistsError(FlowdeckError):
    code = "ALREADY_EXISTS"
    reason = "RESOURCE_EXISTS"


class FailedPreconditionError(FlowdeckError):
    code = "FAILED_PRECONDITION"
    reason = "RESOURCE_STATE_CONFLICT"


class ResourceExhaustedError(FlowdeckError):
    code = "RESOURCE_EXHAUSTED"
    reason = "LIMIT_EXCEEDED"


class UnauthenticatedError(FlowdeckError):
    code = "UNAUTHENTICATED"
    reason = "CREDENTIALS_REJECTED"


class PermissionDeniedError(FlowdeckError):
    code = "PERMISSION_DENIED"
    reason = "ACCESS_NOT_GRANTED"


class AbortedError(FlowdeckError):
    """A concurrent change got in the way; the caller may retry."""

    code = "ABORTED"
    reason = "CONCURRENT_CHANGE"


class UnavailableError(FlowdeckError):
    code = "UNAVAILABLE"
    reason = "SERVER_UNAVAILABLE"


class DeadlineExceededError(FlowdeckError):
    code = "DEADLINE_EXCEEDED"
    reason = "CALL_TIMED_OUT"


class DataLossError(FlowdeckError):
    """Stored data no longer matches its checksum."""

    code = "DATA_LOSS"
    reason = "DATA_CORRUPT"


class CancelledError(FlowdeckError):
    code = "CANCELLED"
    reason = "CALL_CANCELLED"


class UnimplementedError(FlowdeckError):
    code = "UNIMPLEMENTED"
    reason = "METHOD_NOT_IMPLEMENTED"


class ServerError(FlowdeckError):
    """The server failed (INTERNAL, UNKNOWN): a bug; its log has the traceback."""

    code = "INTERNAL"
    reason = "UNEXPECTED_SERVER_ERROR"


BY_CODE: dict[str, type[FlowdeckError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError, NotFoundError, AlreadyExistsError, FailedPreconditionError, ResourceExhaustedError,
        UnauthenticatedError, PermissionDeniedError, AbortedError, UnavailableError, DeadlineExceededError,
        DataLossError, CancelledError, UnimplementedError, ServerError,
    )
}
