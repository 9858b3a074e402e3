"""A failed call's gRPC status as the flowdeck exception it stands for.

A flowdeck server sends its details the standard way: a `google.rpc.Status`
in the `grpc-status-details-bin` trailer, holding an `ErrorInfo` (reason,
metadata) and, on INVALID_ARGUMENT, a `BadRequest` (the field violations).
Servers before that sent only the deprecated `flowdeck-error-info-bin`
trailer, read when the standard one is absent. A status with neither was made
by the gRPC library itself, never by a server: only such a status can be a
failure to connect.
"""
from __future__ import annotations

import dataclasses

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from flowdeck import exceptions as exc
from flowdeck.v1 import common_pb2

LEGACY_ERROR_INFO_KEY = "flowdeck-error-info-bin"


@dataclasses.dataclass
class Details:
    """What a server said about an error beyond its code and message."""

    reason: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    violations: list[exc.FieldViolation] = dataclasses.field(default_factory=list)


def error_from_rpc_error(err: grpc.RpcError, address: str) -> exc.FlowdeckError:
    code = err.code()
    message = err.details() or code.name
    details = standard_details(err) or legacy_details(err)
    if details is None:
        failure = connection_failure(code, message, address)
        if failure is not None:
            return failure
        details = Details()
    cls = exc.BY_CODE.get(code.name, exc.ServerError)
    if issubclass(cls, exc.InvalidArgumentError):
        return cls(message, field=details.metadata.get("field", ""), violations=details.violations,
                   reason=details.reason, metadata=details.metadata)
    return cls(message, reason=details.reason, metadata=details.metadata)


def standard_details(err: grpc.RpcError) -> Details | None:
    """The google.rpc.Status details; None when the call carries none."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        # The trailer disagrees with the call's own code or message: not this call's.
        return None
    if status is None:
        return None
    details = Details()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            details.reason, details.metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            details.violations += [exc.FieldViolation(v.field, v.description) for v in bad.field_violations]
    return details


def legacy_details(err: grpc.RpcError) -> Details | None:
    """The deprecated flowdeck.v1.ErrorInfo trailer; None when absent."""
    for key, value in err.trailing_metadata() or ():
        if key == LEGACY_ERROR_INFO_KEY:
            info = common_pb2.ErrorInfo.FromString(value)
            return Details(info.reason, dict(info.metadata))
    return None


# -- failures to connect ---------------------------------------------------------------
# gRPC reports every one as UNAVAILABLE and tells them apart only in its
# message, so that text is read here and nowhere else. Each kind has a reason
# of its own; the wording for each lives in one place below.

_TLS_WORDS = ("ssl", "tls", "handshake", "certificate")
_CONNECT_WORDS = ("connect", "dns")
_CLOSED_WORDS = ("socket closed", "reset")

_UNREACHABLE = "cannot reach the flowdeck server at {address}; start one with `flowdeck server start`"
MESSAGES = {
    "TLS_HANDSHAKE_FAILED": (
        "TLS with the flowdeck server at {address} failed; check FLOWDECK_API_TLS_CA "
        "(and FLOWDECK_API_TLS_CERT/_KEY for mutual TLS): {details}"
    ),
    "SERVER_UNREACHABLE": _UNREACHABLE,
    # What a plaintext client (or one without the client certificate) sees of a TLS server.
    "CONNECTION_CLOSED_BY_SERVER": _UNREACHABLE + (
        " (the server closed the connection: if it serves TLS, set FLOWDECK_API_TLS_CA, and "
        "FLOWDECK_API_TLS_CERT/_KEY for mutual TLS)"
    ),
}


def connection_failure_reason(code: grpc.StatusCode, message: str) -> str | None:
    """Which failure to connect a library-made status reports; None if it is none."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    text = message.lower()
    if any(w in text for w in _TLS_WORDS):
        return "TLS_HANDSHAKE_FAILED"
    if any(w in text for w in _CONNECT_WORDS):
        return "CONNECTION_CLOSED_BY_SERVER" if any(w in text for w in _CLOSED_WORDS) else "SERVER_UNREACHABLE"
    return None


def connection_failure(code: grpc.StatusCode, message: str, address: str) -> exc.ConnectionFailedError | None:
    reason = connection_failure_reason(code, message)
    if reason is None:
        return None
    return exc.ConnectionFailedError(MESSAGES[reason].format(address=address, details=message), reason=reason)
