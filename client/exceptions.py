"""The errors flowdeck raises: one class per gRPC status a caller can meet.

They are the core's domain errors (the server raises the same classes), plus
the client's own connection failures.
"""
from __future__ import annotations

from flowdeck.core.errors import (
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
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
)

__all__ = [
    "AbortedError", "AlreadyExistsError", "CancelledError", "ConnectionFailedError", "DataLossError",
    "DeadlineExceededError", "FailedPreconditionError", "FieldViolation", "FlowdeckError", "InvalidArgumentError",
    "NotFoundError", "OutOfRangeError", "PermissionDeniedError", "ResourceExhaustedError", "ServerError",
    "UnauthenticatedError", "UnavailableError", "UnimplementedError", "UnknownError",
]


class ConnectionFailedError(UnavailableError):
    """The connection to the server failed: it could not be reached, refused
    the TLS handshake, or was lost during the call."""

    reason = "SERVER_UNREACHABLE"
