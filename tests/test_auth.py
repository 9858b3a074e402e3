"""API keys and scopes (issue 8).

The matrix calls every RPC the server serves with no key, a bad key, a key of
each scope and a revoked key, and checks the outcome against SCOPE_FOR, the
one table in flowdeck.server.api.scopes: UNAUTHENTICATED and PERMISSION_DENIED
come back exactly when the table says (a permitted call may still fail with
INVALID_ARGUMENT, NOT_FOUND, ...). A new RPC without a scope fails here.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import threading

import grpc
import pytest
from google.protobuf import message_factory

import flowdeck.v1
from conftest import insert_test_keys, run_cli
from support.waiting import wait_until

DENIALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
CREDENTIALS = ("none", "malformed", "unknown", "read", "write", "agent", "admin", "revoked")


def all_methods() -> dict[str, object]:
    """Full method name -> descriptor for every RPC the server registers."""
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    modules = [health_pb2, reflection_pb2]
    for mod in sorted(m.name for m in pkgutil.iter_modules(flowdeck.v1.__path__)):
        if mod.endswith("_pb2"):
            modules.append(importlib.import_module(f"flowdeck.v1.{mod}"))
    out = {}
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out[f"/{service.full_name}/{method.name}"] = method
    return out


def registered_services() -> set[str]:
    from grpc_health.v1 import health
    from grpc_reflection.v1alpha import reflection

    from flowdeck.server.app import SERVICES

    names = {health.SERVICE_NAME, reflection.SERVICE_NAME}
    for pb2, _rpc, name, _factory in SERVICES:
        names.add(pb2.DESCRIPTOR.services_by_name[name].full_name)
    return names


def test_every_rpc_has_exactly_one_scope():
    from flowdeck.server.api.scopes import ALLOWED, SCOPE_FOR

    methods = all_methods()
    missing = sorted(set(methods) - set(SCOPE_FOR))
    assert not missing, f"RPCs without a scope in flowdeck.server.api.scopes.SCOPE_FOR: {missing}"
    stale = sorted(set(SCOPE_FOR) - set(methods))
    assert not stale, f"SCOPE_FOR names RPCs that do not exist: {stale}"
    assert all(need in ALLOWED for need in SCOPE_FOR.values())
    # Every service the server registers is described (so covered above).
    assert registered_services() <= {m.split("/")[1] for m in methods}


# -- the matrix -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def matrix(session_auth_server, session_key_material):
    """The auth server with the test keys, plus a plain channel to it."""
    from conftest import truncate_all

    truncate_all(session_auth_server.server.db)
    keys = insert_test_keys(session_auth_server.server.db, session_key_material)
    keys["malformed"] = "not-a-key"
    keys["unknown"] = "fdk_0123456789abcdef_" + "A" * 43
    channel = grpc.insecure_channel(session_auth_server.address)
    yield channel, keys
    channel.close()


def _request_for(method_name: str, md):
    request = message_factory.GetMessageClass(md.input_type)()
    if method_name.endswith("/SetFlowRunState"):
        # An agent key must show a fencing token (reports only for runs it holds).
        request.fencing_token = 1
    if method_name.endswith("/ServerReflectionInfo"):
        request.list_services = ""
    return request


def call_rpc(channel, method_name: str, md, metadata, timeout: float = 10.0):
    """Call any RPC; return (code, details) of its outcome (OK on success)."""
    request_cls = message_factory.GetMessageClass(md.input_type)
    response_cls = message_factory.GetMessageClass(md.output_type)
    request = _request_for(method_name, md)
    kind = (md.client_streaming, md.server_streaming)
    ser, de = (lambda m: m.SerializeToString()), response_cls.FromString
    try:
        if kind == (False, False):
            channel.unary_unary(method_name, request_serializer=ser, response_deserializer=de)(
                request, metadata=metadata, timeout=timeout)
        elif kind == (False, True):
            call = channel.unary_stream(method_name, request_serializer=ser, response_deserializer=de)(
                request, metadata=metadata, timeout=timeout)
            for _ in call:  # the first message is enough (Health.Watch never ends)
                call.cancel()
                break
        elif kind == (True, False):
            channel.stream_unary(method_name, request_serializer=ser, response_deserializer=de)(
                iter([request_cls()]), metadata=metadata, timeout=timeout)
        else:
            call = channel.stream_stream(method_name, request_serializer=ser, response_deserializer=de)(
                iter([request]), metadata=metadata, timeout=timeout)
            for _ in call:
                call.cancel()
                break
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.CANCELLED:
            return grpc.StatusCode.OK, ""
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("method_name", sorted(all_methods()), ids=lambda m: m.rsplit("/", 1)[-1])
def test_auth_matrix(matrix, method_name):
    from flowdeck.server.api.scopes import OPEN, SCOPE_FOR, needed_text, scopes_allowed

    channel, keys = matrix
    md = all_methods()[method_name]
    need = SCOPE_FOR[method_name]
    allowed = scopes_allowed(method_name)
    results = {}
    for cred in CREDENTIALS:
        metadata = () if cred == "none" else (("authorization", f"Bearer {keys[cred]}"),)
        results[cred] = call_rpc(channel, method_name, md, metadata)
    for cred, (code, details) in results.items():
        where = f"{method_name} with {cred} key: {code.name}: {details}"
        if need == OPEN:
            assert code not in DENIALS, where
        elif cred in ("none", "malformed", "unknown", "revoked"):
            assert code == grpc.StatusCode.UNAUTHENTICATED, where
        elif cred in allowed:
            assert code not in DENIALS, where
            assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), where
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, where
            assert f"scope {needed_text(need)}" in details, where
    for cred, (_code, details) in results.items():
        if cred in keys:
            assert keys[cred] not in details, "a key came back in a status message"


# -- behaviour ------------------------------------------------------------------------------

def test_health_is_open_and_reflection_needs_a_key(auth_server, api_keys):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(auth_server.address) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ServerReflectionInfo(iter([req]), timeout=10))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        got = list(stub.ServerReflectionInfo(iter([req]), timeout=10,
                                             metadata=(("authorization", f"Bearer {api_keys['read']}"),)))
        names = {s.name for s in got[0].list_services_response.service}
        assert "flowdeck.v1.ApiKeyService" in names and "flowdeck.v1.DeploymentService" in names


def test_bad_authorization_headers_are_unauthenticated(auth_server, api_keys):
    from flowdeck.v1 import flow_service_pb2 as fpb
    from flowdeck.v1 import flow_service_pb2_grpc as fgrpc

    with grpc.insecure_channel(auth_server.address) as ch:
        stub = fgrpc.FlowServiceStub(ch)
        for header in (api_keys["read"], f"Basic {api_keys['read']}", "Bearer ", "Bearer fdk_x_y",
                       f"Bearer {api_keys['read'][:-1]}X"):
            with pytest.raises(grpc.RpcError) as err:
                stub.ListFlows(fpb.ListFlowsRequest(), metadata=(("authorization", header),), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, header
        stub.ListFlows(fpb.ListFlowsRequest(), timeout=10,
                       metadata=(("authorization", f"bearer {api_keys['read']}"),))


def test_permission_denied_names_the_scope(auth_server, api_keys):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import PermissionDeniedError

    with FlowdeckClient(auth_server.address, api_key=api_keys["read"]) as reader:
        assert reader.list_deployments() == []
        with pytest.raises(PermissionDeniedError, match="scope write"):
            reader.create_deployment("d", flow_name="f")
        with pytest.raises(PermissionDeniedError, match="scope admin"):
            reader.list_api_keys()
    with FlowdeckClient(auth_server.address, api_key=api_keys["write"]) as writer:
        writer.create_deployment("d", flow_name="f")
        with pytest.raises(PermissionDeniedError, match="scope admin"):
            writer.create_api_key("x", scope="read")
    with FlowdeckClient(auth_server.address, api_key=api_keys["agent"]) as agent:
        with pytest.raises(PermissionDeniedError, match="scope write"):
            agent.create_deployment("d2", flow_name="f")


def test_every_key_may_ask_who_it_is(auth_server, api_keys, caplog):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import UnauthenticatedError

    caplog.set_level(logging.INFO, logger="flowdeck.server.auth")
    for scope in ("read", "write", "agent", "admin"):
        with FlowdeckClient(auth_server.address, api_key=api_keys[scope]) as c:
            me = c.get_current_api_key()
        assert (me.name, me.scope, me.revoked) == (f"test-{scope}", scope, None)
        assert me.id == api_keys[scope].split("_")[1] and me.created is not None
    with FlowdeckClient(auth_server.address, api_key=api_keys["revoked"]) as c:
        with pytest.raises(UnauthenticatedError, match="revoked"):
            c.get_current_api_key()
    # Asking refuses nothing: no "refused" line in the server's log.
    assert not [r for r in caplog.records if r.getMessage().startswith("refused")]


def test_who_am_i_without_auth_is_a_failed_precondition(client):
    from flowdeck.exceptions import FailedPreconditionError

    with pytest.raises(FailedPreconditionError, match="without --auth") as e:
        client.get_current_api_key()
    assert e.value.reason == "AUTH_DISABLED"


def test_agent_key_reports_only_with_a_fencing_token(auth_client, auth_server, api_keys):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import FailedPreconditionError, PermissionDeniedError

    run = auth_client.create_flow_run(flow_name="f")
    with FlowdeckClient(auth_server.address, api_key=api_keys["agent"]) as agent:
        with pytest.raises(PermissionDeniedError, match="fencing_token"):
            agent.set_flow_run_state(run.id, "RUNNING")
        with pytest.raises(PermissionDeniedError, match="fencing_token"):
            agent.set_flow_run_state(run.id, "RUNNING", force=True, fencing_token=3)
        # With a token the call gets past auth; the lease check is the domain's.
        with pytest.raises(FailedPreconditionError):
            agent.set_flow_run_state(run.id, "RUNNING", fencing_token=3)
        assert agent.create_logs([{"flow_run_id": run.id, "timestamp": "2030-01-01T00:00:00Z",
                                   "message": "from the agent"}]) == 1
        assert agent.get_flow_run(run.id).id == run.id


def test_keys_are_stored_as_salted_hashes_and_shown_once(auth_client, auth_server):
    from sqlalchemy import select, text

    from flowdeck.server.models import ApiKeyRow

    a, key_a = auth_client.create_api_key("one", scope="read")
    b, key_b = auth_client.create_api_key("two", scope="read")
    assert key_a.startswith(f"fdk_{a.id}_") and key_b.startswith(f"fdk_{b.id}_")
    db = auth_server.server.db
    with db.read() as s:
        rows = {r.id: r for r in s.scalars(select(ApiKeyRow))}
        dump = " ".join(str(v) for row in s.execute(text("SELECT * FROM api_keys")) for v in row)
        logged = b"".join(bytes(r[0]) for r in s.execute(text("SELECT response FROM request_log")))
    secret_a = key_a.split("_", 2)[2]
    assert key_a not in dump and secret_a not in dump and key_b not in dump
    assert secret_a.encode() not in logged and key_a.encode() not in logged
    salt_a, salt_b = rows[a.id].secret_hash.split("$")[4], rows[b.id].secret_hash.split("$")[4]
    assert rows[a.id].secret_hash.startswith("scrypt$") and salt_a != salt_b
    listed = auth_client.list_api_keys()
    assert {"one", "two", "test-admin"} <= {k.name for k in listed}
    assert key_a not in repr(listed) and "fdk_" not in repr([k.model_dump() for k in listed])


def test_create_with_a_repeated_request_id_never_replays_the_secret(auth_client, auth_server, api_keys, wire):
    import uuid

    from flowdeck.v1 import api_key_service_pb2 as akpb
    from flowdeck.v1 import api_key_service_pb2_grpc as akgrpc

    stub = wire.stub(auth_server.address, akgrpc.ApiKeyServiceStub, api_key=api_keys["admin"])
    rid = str(uuid.uuid4())
    req = akpb.CreateApiKeyRequest(api_key=akpb.ApiKey(name="once", scope=akpb.API_KEY_SCOPE_READ), request_id=rid)
    first = stub.CreateApiKey(req, timeout=10)
    assert first.secret.startswith("fdk_")
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateApiKey(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "shown only" in err.value.details() and first.secret not in err.value.details()
    assert [k.name for k in auth_client.list_api_keys()].count("once") == 1


def test_names_are_unique_among_active_keys(auth_client):
    from flowdeck.exceptions import AlreadyExistsError, InvalidArgumentError, NotFoundError

    auth_client.create_api_key("ci", scope="write")
    with pytest.raises(AlreadyExistsError):
        auth_client.create_api_key("ci", scope="read")
    auth_client.revoke_api_key("ci")
    with pytest.raises(NotFoundError):
        auth_client.revoke_api_key("ci")
    again, _ = auth_client.create_api_key("ci", scope="read")
    assert again.scope == "read"
    names = [(k.name, k.revoked is None) for k in auth_client.list_api_keys(show_revoked=True)]
    assert ("ci", True) in names and ("ci", False) in names
    with pytest.raises(InvalidArgumentError):
        auth_client.create_api_key("", scope="read")
    with pytest.raises(InvalidArgumentError):
        auth_client.create_api_key("x", scope="root")


def test_revocation_takes_effect_on_the_next_call(auth_client, auth_server):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import UnauthenticatedError

    _, key = auth_client.create_api_key("short-lived", scope="write")
    with FlowdeckClient(auth_server.address, api_key=key, retries=0) as c:
        c.create_flow("before")
        auth_client.revoke_api_key("short-lived")
        with pytest.raises(UnauthenticatedError, match="revoked"):
            c.list_flows()
        with pytest.raises(UnauthenticatedError):
            c.create_flow("after")
    assert [f.name for f in auth_client.list_flows()] == ["before"]


def _open_lease(address: str, key: str, queue: str):
    """A lease stream with a hello; returns (call, responses iterator, stop event)."""
    from flowdeck.v1 import agent_service_pb2 as apb
    from flowdeck.v1 import agent_service_pb2_grpc as agrpc

    channel = grpc.insecure_channel(address)
    stop = threading.Event()

    def requests():
        yield apb.LeaseRequest(hello=apb.AgentHello(agent_name="t", work_queues=[queue], capacity=1))
        while not stop.wait(0.2):
            pass

    call = agrpc.AgentServiceStub(channel).Lease(requests(), metadata=(("authorization", f"Bearer {key}"),),
                                               timeout=30)
    return channel, call, stop


def _stream_end(call) -> grpc.StatusCode | None:
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        return e.code()
    return None


@pytest.fixture
def lease_server(request, database_url, tmp_path, session_key_material):
    """A server with auth and its background loops (the lease stream needs the
    dispatcher), at most two lease streams per key; yields (server, admin client).
    It re-checks keys every 0.5 s, or as often as an indirect parameter says."""
    from conftest import in_process_server, truncate_all
    from flowdeck.client import FlowdeckClient

    server = in_process_server(tmp_path, background=True, database_url=database_url, auth=True,
                               auth_recheck_seconds=getattr(request, "param", 0.5), max_lease_streams_per_key=2)
    truncate_all(server.server.db)
    server.keys = insert_test_keys(server.server.db, session_key_material)
    admin = FlowdeckClient(server.address, timeout=20, api_key=server.keys["admin"])
    admin.create_work_queue("q")
    yield server, admin
    admin.close()
    server.stop()


@pytest.mark.parametrize("lease_server", [3600.0], indirect=True)
def test_revocation_ends_open_lease_streams(lease_server):
    """Revoked on the server holding the stream, it ends at once: the periodic
    re-check (an hour here) cannot be what ends it before the call's deadline."""
    server, admin = lease_server
    _, key = admin.create_api_key("agent-1", scope="agent")
    channel, call, stop = _open_lease(server.address, key, "q")
    try:
        first = next(call)
        assert first.WhichOneof("kind") == "welcome"
        admin.revoke_api_key("agent-1")
        assert _stream_end(call) == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in call.details()
    finally:
        stop.set()
        channel.close()


def test_revocation_elsewhere_ends_lease_streams_on_recheck(lease_server):
    """Revoked by another replica (here: straight in the database), the stream
    ends on a re-check (every 0.5 s here): UNAUTHENTICATED, long before the
    stream's 30 s deadline."""
    from flowdeck.server import api_keys as ak

    server, admin = lease_server
    _, key = admin.create_api_key("agent-2", scope="agent")
    channel, call, stop = _open_lease(server.address, key, "q")
    try:
        assert next(call).WhichOneof("kind") == "welcome"
        with server.server.db.write() as s:
            ak.revoke(s, "agent-2")
        assert _stream_end(call) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stop.set()
        channel.close()


def test_lease_streams_per_key_are_capped(lease_server):
    server, _admin = lease_server
    address, keys = server.address, server.keys
    opened = []
    try:
        for _ in range(2):
            opened.append(_open_lease(address, keys["agent"], "q"))
            assert next(opened[-1][1]).WhichOneof("kind") == "welcome"
        extra = _open_lease(address, keys["agent"], "q")
        opened.append(extra)
        assert _stream_end(extra[1]) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "FLOWDECK_MAX_LEASE_STREAMS_PER_KEY" in extra[1].details()
        # Closing one frees its place (once the server has seen the cancel).
        opened[0][1].cancel()

        def welcomed_again() -> bool:
            opened.append(_open_lease(address, keys["agent"], "q"))
            try:
                return next(opened[-1][1]).WhichOneof("kind") == "welcome"
            except grpc.RpcError:
                return False

        wait_until(welcomed_again, "a closed stream to free its place", every=0.1)
    finally:
        for channel, _call, stop in opened:
            stop.set()
            channel.close()


def test_mutating_calls_are_logged_with_the_key_name(auth_client, api_keys, caplog):
    caplog.set_level(logging.INFO, logger="flowdeck.server.auth")
    auth_client.create_flow("logged")
    auth_client.list_flows()
    _, new_key = auth_client.create_api_key("audited", scope="read")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "FlowService/CreateFlow by API key 'test-admin' (scope admin): OK" in text
    assert "ListFlows" not in text
    for key in (*api_keys.values(), new_key):
        assert key not in text and key.split("_", 2)[2] not in text


def test_streams_carry_the_key(auth_server, api_keys):
    """The client's own retries reuse the header: a stream and a unary call both carry it."""
    from flowdeck.client import FlowdeckClient

    with FlowdeckClient(auth_server.address, api_key=api_keys["write"]) as c:
        fd, sha = c.upload_flow_data(b"print('hi')\n", flow_name="f", filename="f.py")
        assert c.download_flow_data(sha) == b"print('hi')\n"


# -- CLI --------------------------------------------------------------------------------------

def test_cli_keys_end_to_end(tmp_path, server_process):
    """`flowdeck server start --auth`, `server create-admin-key`, `api-key create/ls/revoke`,
    and auth errors as one line with exit 1."""
    import json

    home = tmp_path / "home"
    env = {"FLOWDECK_HOME": str(home), "FLOWDECK_API_KEY": "", "FLOWDECK_DATABASE_URL": ""}
    made = run_cli("server", "create-admin-key", "root", env=env)
    assert made.returncode == 0, made.stderr
    admin = made.stdout.strip()
    assert admin.startswith("fdk_") and "\n" not in admin and admin not in made.stderr

    server = server_process("--auth", "--no-scheduler", home=home)
    base = {**env, "FLOWDECK_API_URL": server.address}

    denied = run_cli("deployment", "ls", env=base)
    assert denied.returncode == 1
    assert denied.stderr.strip().count("\n") == 0 and "API key" in denied.stderr, denied.stderr

    created = run_cli("api-key", "create", "ci", "--scope", "read", env={**base, "FLOWDECK_API_KEY": admin})
    assert created.returncode == 0, created.stderr
    reader = created.stdout.strip()
    assert reader.startswith("fdk_")

    ok = run_cli("deployment", "ls", "--json", env={**base, "FLOWDECK_API_KEY": reader})
    assert ok.returncode == 0 and json.loads(ok.stdout) == []
    no = run_cli("api-key", "ls", env={**base, "FLOWDECK_API_KEY": reader})
    assert no.returncode == 1 and "scope admin" in no.stderr and no.stderr.strip().count("\n") == 0

    listed = run_cli("api-key", "ls", "--json", env={**base, "FLOWDECK_API_KEY": admin})
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert {k["name"] for k in keys} == {"root", "ci"}
    assert set(keys[0]) == {"id", "name", "scope", "created", "revoked", "created_by"}
    assert admin not in listed.stdout and reader not in listed.stdout
    table = run_cli("api-key", "ls", env={**base, "FLOWDECK_API_KEY": admin})
    assert table.returncode == 0 and "ci" in table.stdout

    revoked = run_cli("api-key", "revoke", "ci", env={**base, "FLOWDECK_API_KEY": admin})
    assert revoked.returncode == 0, revoked.stderr
    after = run_cli("deployment", "ls", env={**base, "FLOWDECK_API_KEY": reader})
    assert after.returncode == 1 and "revoked" in after.stderr and after.stderr.strip().count("\n") == 0
    assert reader not in after.stderr
