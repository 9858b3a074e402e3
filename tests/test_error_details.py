"""Errors any gRPC library can read: the standard google.rpc.Status in
`grpc-status-details-bin` (ErrorInfo on every error, BadRequest on
INVALID_ARGUMENT), read here with plain grpc and by the flowdeck client; and
every reason the code can send is specific and documented in the README."""
from __future__ import annotations

import ast
import re
import socket
import uuid
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from conftest import ROOT
from test_tls import _server as tls_server
from test_tls import pki  # noqa: F401 - the fixture, for the TLS failure test

from flowdeck.core import errors
from flowdeck.v1 import agent_service_pb2 as apb
from flowdeck.v1 import agent_service_pb2_grpc as agrpc
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import deployment_service_pb2 as dpb
from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc

DETAILS_KEY = "grpc-status-details-bin"


def _fail(call):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def _rich_status(err: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status in the trailer, parsed by hand (no grpc-status helper)."""
    found = [value for key, value in err.trailing_metadata() if key == DETAILS_KEY]
    assert len(found) == 1, f"one {DETAILS_KEY} trailer, got {err.trailing_metadata()}"
    status = status_pb2.Status.FromString(found[0])
    assert status.code == err.code().value[0]
    assert status.message == err.details()
    return status


def _unpack(status: status_pb2.Status, cls):
    out = []
    for detail in status.details:
        if detail.Is(cls.DESCRIPTOR):
            msg = cls()
            detail.Unpack(msg)
            out.append(msg)
    return out


@pytest.fixture
def deployments(server):
    with grpc.insecure_channel(server.address) as channel:
        yield dgrpc.DeploymentServiceStub(channel)


# -- what a plain gRPC client reads --------------------------------------------------------

def test_not_found_carries_error_info(deployments):
    err = _fail(lambda: deployments.GetDeploymentByName(dpb.GetDeploymentByNameRequest(name="no-flow/no-such"),
                                                        timeout=20))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    status = _rich_status(err)
    [info] = _unpack(status, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("DEPLOYMENT_NOT_FOUND", "flowdeck.dev")
    assert _unpack(status, error_details_pb2.BadRequest) == []


def test_invalid_argument_carries_bad_request(deployments):
    bad = c.Deployment(name="nightly", flow_name="etl",
                       schedule=c.Schedule(cron=c.CronSchedule(cron="61 * * * *")))
    err = _fail(lambda: deployments.CreateDeployment(dpb.CreateDeploymentRequest(deployment=bad), timeout=20))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = _rich_status(err)
    [info] = _unpack(status, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_SCHEDULE", "flowdeck.dev")
    [bad_request] = _unpack(status, error_details_pb2.BadRequest)
    [violation] = bad_request.field_violations
    assert violation.field == "deployment.schedule.cron.cron" == info.metadata["field"]
    assert violation.description.startswith("'61 * * * *': ")
    assert violation.field in err.details()


def test_the_deprecated_trailer_is_still_sent(deployments):
    err = _fail(lambda: deployments.GetDeployment(dpb.GetDeploymentRequest(id=str(uuid.uuid4())), timeout=20))
    [legacy] = [value for key, value in err.trailing_metadata() if key == "flowdeck-error-info-bin"]
    info = c.ErrorInfo.FromString(legacy)
    assert (info.reason, info.domain) == ("DEPLOYMENT_NOT_FOUND", "flowdeck")


# -- what the flowdeck client raises -------------------------------------------------------

def test_client_raises_invalid_argument_with_violations(client):
    with pytest.raises(errors.InvalidArgumentError) as info:
        client.create_flow("etl/nightly")
    err = info.value
    assert err.reason == "INVALID_FIELD"
    assert err.field == "flow.name"
    assert err.violations == [errors.FieldViolation("flow.name", "'etl/nightly': must not contain '/'")]
    assert err.violations[0].field == "flow.name"
    assert str(err) == "invalid flow.name 'etl/nightly': must not contain '/'"


def test_client_raises_not_found_with_its_reason(client):
    with pytest.raises(errors.NotFoundError) as info:
        client.get_flow(str(uuid.uuid4()))
    assert info.value.reason == "FLOW_NOT_FOUND"
    assert info.value.code == "NOT_FOUND"


def test_a_server_unavailable_is_not_read_as_a_connection_failure(server):
    """The dispatcher's UNAVAILABLE says "connect" in its message; its details
    show a server sent it, so it stays UnavailableError with its reason."""
    from flowdeck.client._status import error_from_rpc_error
    from flowdeck.exceptions import ConnectionFailedError

    hello = apb.LeaseRequest(hello=apb.AgentHello(agent_name="t", work_queues=["default"], capacity=1))
    with grpc.insecure_channel(server.address) as channel:
        err = _fail(lambda: list(agrpc.AgentServiceStub(channel).Lease(iter([hello]), timeout=20)))
    assert err.code() == grpc.StatusCode.UNAVAILABLE and "connect" in err.details()
    raised = error_from_rpc_error(err, server.address)
    assert type(raised) is errors.UnavailableError and not isinstance(raised, ConnectionFailedError)
    assert raised.reason == "DISPATCHER_NOT_RUNNING"


def test_connection_failures_have_reasons(tmp_path, database_url, pki, monkeypatch):  # noqa: F811
    from flowdeck.channels import make_channel
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import ConnectionFailedError

    for name in ("FLOWDECK_API_KEY", "FLOWDECK_API_TLS_CA", "FLOWDECK_API_TLS_CERT", "FLOWDECK_API_TLS_KEY",
                 "FLOWDECK_API_TLS_SERVER_NAME"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    server = tls_server(tmp_path, database_url, pki)
    try:
        cases = [
            (closed, None, "SERVER_UNREACHABLE", f"cannot reach the flowdeck server at {closed}; start one with"),
            (server.address, None, "CONNECTION_CLOSED_BY_SERVER",
             "closed the connection as soon as it opened, as a TLS server does to a plaintext client"),
            (server.address, make_channel(server.address, tls=True), "TLS_HANDSHAKE_FAILED",
             f"TLS with the flowdeck server at {server.address} failed: its certificate is not signed by"),
        ]
        for address, channel, reason, wording in cases:
            with FlowdeckClient(address, timeout=5, retries=1, channel=channel) as c:
                with pytest.raises(ConnectionFailedError) as info:
                    c.list_flows()
            assert info.value.reason == reason, (address, str(info.value))
            assert wording in str(info.value)
    finally:
        server.stop()


def test_client_falls_back_to_the_deprecated_trailer():
    """A server from before the standard details (a real gRPC server that
    sends only flowdeck-error-info-bin) still gives the client its reason."""
    from flowdeck.client import FlowdeckClient

    legacy = c.ErrorInfo(reason="FLOW_NOT_FOUND", domain="flowdeck", metadata={"name": "etl"}).SerializeToString()

    def get_flow(request, context):
        context.set_trailing_metadata((("flowdeck-error-info-bin", legacy),))
        context.abort(grpc.StatusCode.NOT_FOUND, "flow 'etl' not found")

    class OldServer(grpc.GenericRpcHandler):
        def service(self, details):
            if details.method == "/flowdeck.v1.FlowService/GetFlow":
                return grpc.unary_unary_rpc_method_handler(get_flow, lambda b: b, lambda b: b)
            return None

    old = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[OldServer()])
    port = old.add_insecure_port("127.0.0.1:0")
    old.start()
    try:
        with FlowdeckClient(f"127.0.0.1:{port}", timeout=10) as client:
            with pytest.raises(errors.NotFoundError) as info:
                client.get_flow(str(uuid.uuid4()))
        assert (info.value.reason, info.value.metadata) == ("FLOW_NOT_FOUND", {"name": "etl"})
    finally:
        old.stop(None)


def test_errors_that_are_not_domain_errors_get_details_too():
    from sqlalchemy.exc import OperationalError

    from flowdeck.server.api.interceptors import status_for

    for exc, code, reason in (
        (OperationalError("SELECT 1", {}, Exception("connection refused")), grpc.StatusCode.UNAVAILABLE,
         "DATABASE_UNAVAILABLE"),
        (NotImplementedError(), grpc.StatusCode.UNIMPLEMENTED, "METHOD_NOT_IMPLEMENTED"),
        (KeyError("a bug"), grpc.StatusCode.INTERNAL, "UNEXPECTED_SERVER_ERROR"),
    ):
        sent_code, message, trailing = status_for(exc)
        assert sent_code == code
        status = status_pb2.Status.FromString(dict(trailing)[DETAILS_KEY])
        [info] = _unpack(status, error_details_pb2.ErrorInfo)
        assert (status.code, status.message, info.reason) == (code.value[0], message, reason)
        assert "a bug" not in message


# -- every reason is specific and documented -----------------------------------------------

def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def reasons_the_code_sends() -> dict[str, set[tuple[str, str]]]:
    """reason -> {(status, where)}: every error the server constructs (its
    `reason=` or its class's default), the class defaults, and the reasons the
    client gives to failures to connect."""
    from flowdeck.client import _status
    from flowdeck.exceptions import ConnectionFailedError

    by_name: dict[str, type[errors.FlowdeckError]] = {cls.__name__: cls for cls in errors.BY_CODE.values()}
    by_name["invalid_field"] = errors.InvalidArgumentError
    found: dict[str, set[tuple[str, str]]] = {}

    def add(reason, status, where):
        found.setdefault(reason, set()).add((status, where))

    for cls in errors.BY_CODE.values():
        add(cls.reason, cls.code, f"{cls.__name__}.reason")
    add(ConnectionFailedError.reason, ConnectionFailedError.code, "ConnectionFailedError.reason")
    for reason, (cls, _template) in _status.MESSAGES.items():
        add(reason, cls.code, "flowdeck.client._status.MESSAGES")
    sources = [p for p in (ROOT / "server").rglob("*.py") if "migrations" not in p.parts]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or _call_name(node) not in by_name:
                continue
            cls = by_name[_call_name(node)]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            given = {k.arg: k.value for k in node.keywords}.get("reason")
            if given is None:
                add(cls.reason, cls.code, where)
            else:
                assert isinstance(given, ast.Constant) and isinstance(given.value, str), \
                    f"{where}: reason= must be a string literal, so it can be checked and documented"
                add(given.value, cls.code, where)
    return found


def documented_reasons() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Error reasons", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| `([A-Z_]+)` \| (.+) \|$", section, re.M)
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), "a reason is documented twice"
    return {reason: status for reason, status, _when in rows}


def test_every_reason_is_specific_and_documented():
    sent = reasons_the_code_sends()
    documented = documented_reasons()
    assert len(sent) > 40, sorted(sent)  # the scan sees the raise sites
    problems = []
    for reason, uses in sorted(sent.items()):
        statuses = {status for status, _ in uses}
        where = ", ".join(sorted(w for _, w in uses))
        if not re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", reason):
            problems.append(f"{reason!r} is not an UPPER_SNAKE name of two words or more ({where})")
        if reason in statuses or reason in grpc.StatusCode.__members__:
            problems.append(f"{reason} repeats a status code ({where})")
        if len(statuses) > 1:
            problems.append(f"{reason} is sent with several statuses {sorted(statuses)} ({where})")
        if reason not in documented:
            problems.append(f"{reason} is not in the README's reason table ({where})")
        elif documented[reason] not in statuses:
            problems.append(f"{reason} is documented with {documented[reason]}, sent with {sorted(statuses)}")
    for reason in sorted(set(documented) - set(sent)):
        problems.append(f"{reason} is in the README's reason table but nothing sends it")
    assert not problems, "\n".join(problems)
