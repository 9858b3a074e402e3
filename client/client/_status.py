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
import re

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from flowdeck import exceptions as exc
from flowdeck.channels import TlsSettings, normalize_address
from flowdeck.core.errors import BY_CODE
from flowdeck.v1 import common_pb2

LEGACY_ERROR_INFO_KEY = "flowdeck-error-info-bin"


@dataclasses.dataclass
class Details:
    """What a server said about an error beyond its code and message."""

    reason: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    violations: list[exc.FieldViolation] = dataclasses.field(default_factory=list)


def error_from_rpc_error(err: grpc.RpcError, call: Call | str) -> exc.FlowdeckError:
    """The exception for a failed call; `call` is a Call or just the address."""
    if isinstance(call, str):
        call = Call(call)
    code = err.code()
    message = err.details() or code.name
    details = standard_details(err) or legacy_details(err)
    if details is None:
        failure = connection_failure(code, message, call)
        if failure is not None:
            return failure
        details = Details()
    cls = BY_CODE.get(code.name, exc.ServerError)
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
# gRPC makes these statuses itself (they carry no details) and tells them
# apart only in its message, so that text is read here and nowhere else. Each
# kind has a reason of its own; its wording lives in MESSAGES.


@dataclasses.dataclass(frozen=True)
class Call:
    """What the transport knows of a failed call: where it went, over which TLS
    settings (None: a channel the caller made) and how long each attempt waited."""

    address: str
    tls: TlsSettings | None = None
    timeout: float | None = None
    attempts: int = 1


MESSAGES: dict[str, tuple[type[exc.FlowdeckError], str]] = {
    "SERVER_UNREACHABLE": (
        exc.ConnectionFailedError,
        "cannot reach the flowdeck server at {address}{why}; start one with `flowdeck server start`"),
    # A plaintext client calling a TLS server sees it close the connection.
    "CONNECTION_CLOSED_BY_SERVER": (
        exc.ConnectionFailedError, "the flowdeck server at {address} closed the connection {why}"),
    "TLS_HANDSHAKE_FAILED": (exc.ConnectionFailedError, "TLS with the flowdeck server at {address} failed: {why}"),
    "CONNECTION_LOST": (
        exc.ConnectionFailedError, "the connection to the flowdeck server at {address} was lost during the call ({why})"),
    "CALL_TIMED_OUT": (exc.DeadlineExceededError, "the flowdeck server at {address} did not answer within {why}"),
}

_TLS_WORDS = ("ssl", "tls", "handshake", "certificate", "verification")
_CONNECTING_WORDS = ("failed to connect", "resolving", "dns")
_CLOSED_WORDS = ("socket closed", "reset")
_LOST_WORDS = ("stream removed", "socket closed", "connection reset", "broken pipe", "goaway", "eof")


def connection_failure_reason(code: grpc.StatusCode, message: str) -> str | None:
    """Which failure to connect a library-made status reports; None if it is none."""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        # The library's own wording: a server may send this code with words of its own.
        return "CALL_TIMED_OUT" if message == "Deadline Exceeded" else None
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    text = message.lower()
    if any(w in text for w in _TLS_WORDS):
        return "TLS_HANDSHAKE_FAILED"
    if any(w in text for w in _CONNECTING_WORDS):
        return "CONNECTION_CLOSED_BY_SERVER" if any(w in text for w in _CLOSED_WORDS) else "SERVER_UNREACHABLE"
    if any(w in text for w in _LOST_WORDS):
        return "CONNECTION_LOST"
    return None


def connection_failure(code: grpc.StatusCode, message: str, call: Call) -> exc.FlowdeckError | None:
    reason = connection_failure_reason(code, message)
    if reason is None:
        return None
    tls = call.tls
    if reason == "CONNECTION_CLOSED_BY_SERVER" and tls is not None and tls.enabled:
        # Closed during the handshake: the server refused this client's TLS.
        reason, why = "TLS_HANDSHAKE_FAILED", _refused_handshake(tls)
    else:
        why = WHY[reason](_library_text(message), call)
    cls, template = MESSAGES[reason]
    return cls(template.format(address=call.address, why=why), reason=reason)


def _library_text(message: str) -> str:
    """gRPC's message without its framing (`failed to connect to all addresses; last
    error: UNKNOWN: ipv4:127.0.0.1:4300: ...`) and the `: OK` OpenSSL leaves at the end."""
    text = re.sub(r"^failed to connect to all addresses; last error: [A-Z_]+: (?:ipv[46]:\S+?: )?", "",
                  message.strip())
    return re.sub(r"(: OK)+$", "", text).strip()


def _unreachable(text: str, call: Call) -> str:
    if "resolving" in text.lower() or "dns" in text.lower():
        return f" (cannot resolve its host name: {text.rsplit(': ', 1)[-1].rstrip(']')})"
    return ""


def _closed(text: str, call: Call) -> str:
    if call.tls is None:
        return ("(if it serves TLS, set FLOWDECK_API_TLS_CA, and FLOWDECK_API_TLS_CERT/_KEY for mutual TLS)")
    return ("as soon as it opened, as a TLS server does to a plaintext client: set FLOWDECK_API_TLS_CA to the "
            "CA of its certificate (and FLOWDECK_API_TLS_CERT/_KEY if it asks for a client certificate)")


def _refused_handshake(tls: TlsSettings) -> str:
    if not tls.cert:
        return ("the server closed the connection during the handshake: it asks for a client certificate "
                "(mutual TLS); set FLOWDECK_API_TLS_CERT and FLOWDECK_API_TLS_KEY")
    return ("the server closed the connection during the handshake: it does not accept the client certificate "
            "in FLOWDECK_API_TLS_CERT (is it signed by the CA the server trusts?)")


def _tls_failed(text: str, call: Call) -> str:
    low = text.lower()
    tls = call.tls or TlsSettings()
    if "hostname verification" in low:
        name = tls.server_name or normalize_address(call.address).rsplit(":", 1)[0].split("://")[-1]
        source = ("FLOWDECK_API_TLS_SERVER_NAME" if tls.server_name
                  else "the host in FLOWDECK_API_URL; FLOWDECK_API_TLS_SERVER_NAME checks another name")
        return f"its certificate is not for {name!r} ({source})"
    if "certificate_verify_failed" in low:
        detail = text.split("CERTIFICATE_VERIFY_FAILED:", 1)[-1].strip()
        signer = ("the CA in FLOWDECK_API_TLS_CA" if tls.ca
                  else "a CA this machine trusts (set FLOWDECK_API_TLS_CA to the CA that signed it)")
        return f"its certificate is not signed by {signer} ({detail})"
    if "wrong_version_number" in low:
        return ("it does not speak TLS; for a plaintext server leave FLOWDECK_API_TLS_* unset and give "
                "FLOWDECK_API_URL as host:port")
    return text


def _lost(text: str, call: Call) -> str:
    """`connection reset by peer` from `Stream removed (recvmsg:Connection reset by peer (104))`."""
    found = re.search(r"connection reset by peer|broken pipe|socket closed|goaway|eof", text, re.I)
    return found.group(0).lower() if found else text


def _timed_out(text: str, call: Call) -> str:
    if call.timeout is None:
        return "the call's deadline"
    tries = f" (tried {call.attempts} times)" if call.attempts > 1 else ""
    return f"{call.timeout:g}s{tries}"


WHY = {"SERVER_UNREACHABLE": _unreachable, "CONNECTION_CLOSED_BY_SERVER": _closed,
       "TLS_HANDSHAKE_FAILED": _tls_failed, "CONNECTION_LOST": _lost, "CALL_TIMED_OUT": _timed_out}
