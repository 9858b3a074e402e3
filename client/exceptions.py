"""The errors flowdeck raises: one class per gRPC status a caller can meet.

They are the core's domain errors (the server raises the same classes), plus
the client's own connection failures.
"""
from __future__ import annotations

from flowdeck.core.errors import (
    BY_CODE,
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    FlowdeckError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)

__all__ = [
    "AbortedError", "AlreadyExistsError", "CancelledError", "ConnectionFailedError", "DataLossError",
    "DeadlineExceededError", "FailedPreconditionError", "FieldViolation", "FlowdeckError", "InvalidArgumentError",
    "NotFoundError", "PermissionDeniedError", "ResourceExhaustedError", "ServerError", "UnauthenticatedError",
    "UnavailableError", "UnimplementedError", "BY_CODE",
]


class ConnectionFailedError(UnavailableError):
    """The server could not be reached at all."""

    reason = "SERVER_UNREACHABLE"
