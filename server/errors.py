"""Domain errors raised below the servicers. The API layer maps them to gRPC codes
in one table (flowdeck.server.api.interceptors); nothing here knows about gRPC."""
from __future__ import annotations


class FlowdeckError(Exception):
    """Base of every error a caller can cause."""

    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items()}


class InvalidArgument(FlowdeckError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, value: object, problem: str):
        shown = value if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
        if isinstance(shown, str) and len(shown) > 200:
            shown = shown[:200] + "..."
        super().__init__(f"invalid {field} {shown}: {problem}", field=field)
        self.field = field
        self.value = value


class NotFound(FlowdeckError):
    reason = "NOT_FOUND"


class AlreadyExists(FlowdeckError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(FlowdeckError):
    reason = "FAILED_PRECONDITION"


class ResourceExhausted(FlowdeckError):
    reason = "RESOURCE_EXHAUSTED"


class Unauthenticated(FlowdeckError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(FlowdeckError):
    reason = "PERMISSION_DENIED"


class Aborted(FlowdeckError):
    """A concurrent change got in the way; the caller may retry."""

    reason = "ABORTED"


class Unavailable(FlowdeckError):
    reason = "UNAVAILABLE"


class DataLoss(FlowdeckError):
    """Stored data no longer matches its checksum."""

    reason = "DATA_LOSS"
