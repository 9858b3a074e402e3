"""The Python client's shapes: declared public names, one exception class per
gRPC status, retries that count retries (and only for idempotent calls), get_*
that raise NotFoundError, list_* that take a limit, ids and names apart.

Statuses and retries are checked against a real gRPC server on 127.0.0.1 that
answers FlowService with whatever status the test asks for (the flowdeck
server cannot be made to send every status on demand)."""
from __future__ import annotations

import importlib
import inspect
import threading
import uuid
from concurrent import futures

import grpc
import pytest

from flowdeck import exceptions as exc
from flowdeck.client import FlowdeckClient
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_service_pb2 as fpb


@pytest.mark.parametrize("module", ["flowdeck", "flowdeck.client", "flowdeck.models", "flowdeck.exceptions",
                                    "flowdeck.deployments"])
def test_public_names_are_declared_and_resolve(module):
    mod = importlib.import_module(module)
    assert mod.__all__ and len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_models_are_the_public_models_only():
    import flowdeck.models

    assert not [n for n in vars(flowdeck.models) if n.endswith("_from_pb")]


class StatusServer:
    """FlowService on 127.0.0.1: GetFlow(id=STATUS) fails with that status;
    CreateFlow and DeleteFlow fail with `status`. Every request is recorded."""

    def __init__(self):
        from google.protobuf import empty_pb2

        self.status = grpc.StatusCode.UNAVAILABLE
        self.seen: dict[str, list] = {"GetFlow": [], "CreateFlow": [], "DeleteFlow": []}
        self.lock = threading.Lock()
        handlers = {
            "GetFlow": grpc.unary_unary_rpc_method_handler(
                self._answer("GetFlow"), request_deserializer=fpb.GetFlowRequest.FromString,
                response_serializer=c.Flow.SerializeToString),
            "CreateFlow": grpc.unary_unary_rpc_method_handler(
                self._answer("CreateFlow"), request_deserializer=fpb.CreateFlowRequest.FromString,
                response_serializer=c.Flow.SerializeToString),
            "DeleteFlow": grpc.unary_unary_rpc_method_handler(
                self._answer("DeleteFlow"), request_deserializer=fpb.DeleteFlowRequest.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("flowdeck.v1.FlowService", handlers)])
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _answer(self, method: str):
        def handle(request, context):
            with self.lock:
                self.seen[method].append(request)
            status = grpc.StatusCode[request.id] if method == "GetFlow" else self.status
            context.abort(status, f"{status.name} on purpose")

        return handle

    def calls(self, method: str) -> list:
        with self.lock:
            return list(self.seen[method])


@pytest.fixture
def status_server():
    s = StatusServer()
    yield s
    s.server.stop(None)


def test_every_status_has_its_own_exception(status_server):
    raised = {}
    with FlowdeckClient(status_server.address, retries=0, timeout=10) as client:
        for status in grpc.StatusCode:
            if status == grpc.StatusCode.OK:
                continue
            with pytest.raises(exc.FlowdeckError) as err:
                client.get_flow(status.name)
            assert err.value.code == status.name and err.value.message == f"{status.name} on purpose"
            raised[status.name] = type(err.value)
    assert len(set(raised.values())) == len(raised) == 16
    # Once INTERNAL on the client, now themselves:
    assert raised["ABORTED"] is exc.AbortedError
    assert raised["DEADLINE_EXCEEDED"] is exc.DeadlineExceededError
    assert raised["DATA_LOSS"] is exc.DataLossError
    assert raised["INTERNAL"] is exc.ServerError and issubclass(raised["UNKNOWN"], exc.ServerError)


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_retries_count_retries_and_reuse_the_request_id(status_server, status):
    status_server.status = status
    with FlowdeckClient(status_server.address, retries=3, timeout=10) as client:
        with pytest.raises(exc.FlowdeckError) as err:
            client.get_flow(status.name)
        assert err.value.code == status.name
        assert len(status_server.calls("GetFlow")) == 4  # the call and three retries
        with pytest.raises(exc.FlowdeckError):
            client.create_flow("f")
        creates = status_server.calls("CreateFlow")
        assert len(creates) == 4 and creates[0].request_id
        assert {r.request_id for r in creates} == {creates[0].request_id}  # a retry never applies twice
        with pytest.raises(exc.FlowdeckError):
            client.delete_flow(str(uuid.uuid4()))
        assert len(status_server.calls("DeleteFlow")) == 1  # no request id: never retried


def test_other_statuses_are_not_retried(status_server):
    status_server.status = grpc.StatusCode.ABORTED
    with FlowdeckClient(status_server.address, retries=3, timeout=10) as client:
        with pytest.raises(exc.AbortedError):
            client.create_flow("f")
    assert len(status_server.calls("CreateFlow")) == 1


def test_retries_must_be_a_count():
    for bad in (-1, 1.5, True):
        with pytest.raises(exc.InvalidArgumentError, match="retries"):
            FlowdeckClient("127.0.0.1:1", retries=bad)


def _public_methods(prefix: str):
    return [(n, m) for n, m in inspect.getmembers(FlowdeckClient, inspect.isfunction) if n.startswith(prefix)]


def test_every_list_takes_a_limit_of_50_by_default():
    lists = _public_methods("list_")
    assert len(lists) == 8
    for name, method in lists:
        param = inspect.signature(method).parameters.get("limit")
        assert param is not None and param.default == 50 and param.kind == param.KEYWORD_ONLY, name


def test_every_get_raises_not_found(client):
    # Every get of a thing by its id or name (get_current_api_key looks nothing up).
    gets = [(name, method) for name, method in _public_methods("get_") if name != "get_current_api_key"]
    assert len(gets) >= 9
    for name, method in gets:
        name_arg = "nope/nothing" if "deployment" in name else "nothing"  # deployments: "flow/deployment"
        args = [name_arg if p == "name" else str(uuid.uuid4()) for p in list(inspect.signature(method).parameters)[1:]]
        with pytest.raises(exc.NotFoundError):
            method(client, *args)


def test_limits_page_and_bad_limits_are_refused(client):
    for i in range(5):
        client.create_flow(f"f{i}")
    assert len(client.list_flows(limit=2)) == 2
    assert len(client.list_flows(limit=None)) == 5
    for bad in (0, -1, 2.5):
        with pytest.raises(exc.InvalidArgumentError, match="limit"):
            client.list_flows(limit=bad)


def test_ids_and_names_are_separate(client):
    dep, _ = client.create_deployment("d", flow_name="f")
    by_id = client.create_flow_run_from_deployment(deployment_id=dep.id)
    by_name = client.create_flow_run_from_deployment(deployment_name="f/d")
    assert by_id.deployment_id == by_name.deployment_id == dep.id
    for kwargs in ({}, {"deployment_id": dep.id, "deployment_name": "f/d"}):
        with pytest.raises(exc.InvalidArgumentError, match="deployment_id= or deployment_name="):
            client.create_flow_run_from_deployment(**kwargs)
        with pytest.raises(exc.InvalidArgumentError, match="deployment_id= or deployment_name="):
            client.list_upcoming_runs(**kwargs)
    # An id is never read as a name, nor a name as an id.
    with pytest.raises(exc.InvalidArgumentError, match="deployment_name"):
        client.create_flow_run_from_deployment(deployment_name=dep.id)
    with pytest.raises(exc.InvalidArgumentError, match="deployment_id"):
        client.create_flow_run_from_deployment(deployment_id="f/d")


def test_update_changes_only_the_arguments_given(client):
    dep, _ = client.create_deployment("d", flow_name="f", schedule={"interval": 60}, description="keep",
                                      tags=["a"])
    dep = client.update_deployment(dep.id, schedule=None)
    assert dep.schedule is None and dep.description == "keep" and dep.tags == ["a"]
    dep = client.update_deployment(dep.id, tags=[], max_lateness=30)
    assert dep.tags == [] and dep.max_lateness == 30 and dep.description == "keep"
    q = client.create_work_queue("q", tags=["t"], deployment_ids=[dep.id], concurrency_limit=2)
    q = client.update_work_queue(q.id, tags=["u"])
    assert q.filter.tags == ["u"] and q.filter.deployment_ids == [dep.id] and q.concurrency_limit == 2
    q = client.update_work_queue(q.id, concurrency_limit=None)
    assert q.concurrency_limit is None and q.filter.tags == ["u"]
    with pytest.raises(TypeError):
        client.update_deployment(dep.id, bogus=1)


def test_create_storage_block_takes_a_block_or_a_type(client):
    from flowdeck.blocks.storage import LocalStorageBlock

    a = client.create_storage_block(LocalStorageBlock(path="/srv/a"))
    b = client.create_storage_block(block_type="local", config={"path": "/srv/a"})
    assert a.id == b.id
    for kwargs in ({}, {"block": LocalStorageBlock(), "block_type": "local"}):
        with pytest.raises(exc.InvalidArgumentError, match="block_type"):
            client.create_storage_block(**kwargs)


def test_deployments_by_name_and_with_their_last_run(client):
    dep, _ = client.create_deployment("nightly-EU", flow_name="etl")
    client.create_deployment("hourly", flow_name="etl")
    assert [d.full_name for d in client.list_deployments(name_contains="night")] == ["etl/nightly-EU"]
    assert [d.full_name for d in client.list_deployments(name_contains="ETL/", limit=1)] == ["etl/hourly"]
    with pytest.raises(exc.InvalidArgumentError, match="name_contains") as e:
        client.list_deployments(name_contains="x" * 500)
    assert e.value.field == "name_contains"
    assert dep.last_run is None
    run = client.create_flow_run_from_deployment(deployment_id=dep.id)
    client.set_flow_run_state(run.id, "FAILED", force=True)
    last = client.get_deployment(dep.id).last_run
    assert (last.id, last.name, last.state.type, last.state.name) == (run.id, run.name, "FAILED", "Failed")
    assert last.expected_start_time == run.expected_start_time and last.end_time is not None
    assert client.list_deployments(name_contains="nightly")[0].last_run == last
