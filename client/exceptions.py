"""Errors the flowdeck client raises. Each maps from one gRPC status code."""
from __future__ import annotations


class FlowdeckError(Exception):
    """Base of every error the client raises; str() is a one-line cause."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, reason: str = "", metadata: dict | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}


class InvalidArgumentError(FlowdeckError, ValueError):
    code = "INVALID_ARGUMENT"


class NotFoundError(FlowdeckError, LookupError):
    code = "NOT_FOUND"


class AlreadyExistsError(FlowdeckError):
    code = "ALREADY_EXISTS"


class FailedPreconditionError(FlowdeckError):
    code = "FAILED_PRECONDITION"


class ResourceExhaustedError(FlowdeckError):
    code = "RESOURCE_EXHAUSTED"


class UnauthenticatedError(FlowdeckError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(FlowdeckError):
    code = "PERMISSION_DENIED"


class UnavailableError(FlowdeckError):
    code = "UNAVAILABLE"


class ServerError(FlowdeckError):
    code = "INTERNAL"


class ConnectionFailedError(UnavailableError):
    """The server could not be reached at all."""


BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ResourceExhaustedError,
        UnauthenticatedError,
        PermissionDeniedError,
        UnavailableError,
    )
}
