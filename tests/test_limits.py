"""Limits on what a request may cost (issue 8): request size, parameters size,
number of tags, flow-data size - each refused with RESOURCE_EXHAUSTED or
INVALID_ARGUMENT naming the limit, with nothing stored - and server-side
deadlines."""
from __future__ import annotations

import asyncio

import grpc
import pytest

LIMITS = dict(max_request_bytes=256 * 1024, max_parameters_bytes=1024, max_tags=3, max_flow_data_bytes=4096)


@pytest.fixture(scope="module")
def limited(database_url, tmp_path_factory):
    from conftest import in_process_server

    server = in_process_server(tmp_path_factory.mktemp("limits"), database_url=database_url, **LIMITS)
    yield server
    server.stop()


@pytest.fixture
def lc(limited):
    from conftest import truncate_all
    from flowdeck.client import FlowdeckClient

    truncate_all(limited.server.db)
    c = FlowdeckClient(limited.address, timeout=20, retries=0)
    yield c
    c.close()


def _nothing_stored(c):
    assert c.list_flows() == []
    assert c.list_deployments() == []
    assert c.list_flow_runs() == []


def test_too_many_tags_is_invalid_argument_naming_the_limit(lc):
    from flowdeck.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="FLOWDECK_MAX_TAGS") as err:
        lc.create_deployment("d", flow_name="f", tags=["a", "b", "c", "d"])
    assert "deployment.tags" in err.value.message and "3" in err.value.message
    with pytest.raises(InvalidArgumentError, match="FLOWDECK_MAX_TAGS"):
        lc.create_flow_run(flow_name="f", tags=["a", "b", "c", "d"])
    with pytest.raises(InvalidArgumentError, match="FLOWDECK_MAX_TAGS"):
        lc.create_work_queue("q", tags=["a", "b", "c", "d"])
    _nothing_stored(lc)
    assert lc.list_work_queues() == []
    # At the limit is fine.
    dep, _ = lc.create_deployment("d", flow_name="f", tags=["a", "b", "c"])
    with pytest.raises(InvalidArgumentError, match="FLOWDECK_MAX_TAGS"):
        lc.create_flow_run_from_deployment(deployment_id=dep.id, tags=["1", "2", "3", "4"])
    with pytest.raises(InvalidArgumentError, match="FLOWDECK_MAX_TAGS"):
        lc.update_deployment(dep.id, tags=["1", "2", "3", "4"])
    assert lc.get_deployment(dep.id).tags == ["a", "b", "c"]
    assert lc.list_flow_runs() == []


def test_parameters_over_the_limit_are_resource_exhausted(lc):
    from flowdeck.exceptions import ResourceExhaustedError

    big = {"blob": "x" * 2000}
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_PARAMETERS_BYTES") as err:
        lc.create_deployment("d", flow_name="f", parameters=big)
    assert "deployment.parameters" in err.value.message and "1024 bytes" in err.value.message
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_PARAMETERS_BYTES"):
        lc.create_flow_run(flow_name="f", parameters=big)
    _nothing_stored(lc)
    dep, _ = lc.create_deployment("d", flow_name="f", parameters={"small": 1})
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_PARAMETERS_BYTES"):
        lc.create_flow_run_from_deployment(deployment_id=dep.id, parameters=big)
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_PARAMETERS_BYTES"):
        lc.update_deployment(dep.id, parameters=big)
    huge_schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(100)}}
    with pytest.raises(ResourceExhaustedError, match="deployment.parameter_schema.*FLOWDECK_MAX_PARAMETERS_BYTES"):
        lc.update_deployment(dep.id, parameter_schema=huge_schema)
    assert lc.get_deployment(dep.id).parameters == {"small": 1}
    assert lc.get_deployment(dep.id).parameter_schema is None
    assert lc.list_flow_runs() == []


def test_flow_data_over_the_limit_is_resource_exhausted(lc, limited):
    from flowdeck.exceptions import ResourceExhaustedError

    fd = {"encoding": "text", "blob": "y" * 5000}
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_FLOW_DATA_BYTES") as err:
        lc.create_deployment("d", flow_name="f", flow_data=fd)
    assert "deployment.flow_data.blob" in err.value.message
    # Multi-byte characters count as bytes.
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_FLOW_DATA_BYTES"):
        lc.create_deployment("d", flow_name="f", flow_data={"encoding": "text", "blob": "é" * 2100})
    with pytest.raises(ResourceExhaustedError, match="FLOWDECK_MAX_FLOW_DATA_BYTES"):
        lc.upload_flow_data(b"z" * 5000, flow_name="f", filename="f.py")
    _nothing_stored(lc)
    from sqlalchemy import func, select

    from flowdeck.server.models import FlowDataBlobRow

    with limited.server.db.read() as s:
        assert s.scalar(select(func.count()).select_from(FlowDataBlobRow)) == 0


def test_requests_over_the_maximum_size_are_refused(lc, limited):
    from flowdeck.exceptions import ResourceExhaustedError

    with pytest.raises(ResourceExhaustedError) as err:
        lc.create_deployment("d", flow_name="f", description="w" * (300 * 1024))
    assert str(LIMITS["max_request_bytes"]) in err.value.message
    _nothing_stored(lc)
    # Just under it passes.
    lc.create_deployment("d", flow_name="f", description="w" * (200 * 1024))


def test_limits_are_configurable_from_the_environment(monkeypatch):
    from flowdeck.server.settings import Settings

    monkeypatch.setenv("FLOWDECK_MAX_TAGS", "7")
    monkeypatch.setenv("FLOWDECK_MAX_PARAMETERS_BYTES", "99")
    monkeypatch.setenv("FLOWDECK_MAX_REQUEST_BYTES", "12345")
    monkeypatch.setenv("FLOWDECK_MAX_LEASE_STREAMS_PER_KEY", "4")
    monkeypatch.setenv("FLOWDECK_RPC_DEADLINE_SECONDS", "2.5")
    monkeypatch.setenv("FLOWDECK_SERVER_AUTH", "true")
    s = Settings.from_env()
    assert (s.max_tags, s.max_parameters_bytes, s.max_request_bytes, s.max_lease_streams_per_key,
            s.rpc_deadline_seconds, s.auth) == (7, 99, 12345, 4, 2.5, True)


def test_server_side_work_has_a_deadline(tmp_path, monkeypatch, wire):
    """A call whose server-side work hangs ends with DEADLINE_EXCEEDED after
    rpc_deadline_seconds, even when the client set no deadline."""
    from conftest import in_process_server
    from flowdeck.client import FlowdeckClient
    from flowdeck.server.api.flow_servicer import FlowServicer
    from flowdeck.v1 import flow_service_pb2 as fpb
    from flowdeck.v1 import flow_service_pb2_grpc as fgrpc

    async def stuck(self, request, context):
        await asyncio.sleep(30)

    monkeypatch.setattr(FlowServicer, "GetFlowByName", stuck)
    server = in_process_server(tmp_path, rpc_deadline_seconds=0.5)
    try:
        with FlowdeckClient(server.address) as c:
            # No client deadline, and the handler would sleep 30 s: only the
            # server's own deadline can end the call with this status.
            with pytest.raises(grpc.RpcError) as err:
                # No client deadline.
                wire.stub(server.address, fgrpc.FlowServiceStub).GetFlowByName(fpb.GetFlowByNameRequest(name="x"))
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "FLOWDECK_RPC_DEADLINE_SECONDS" in err.value.details()
            # Other calls are unaffected.
            assert c.list_flows() == []
    finally:
        server.stop()


def test_client_streams_are_limit_checked_before_the_handler_sees_them(tmp_path, monkeypatch):
    """UploadFlowData is a client stream: the request limits check each of its
    messages on the way in, so a handler that keeps no limit of its own still
    never gets past max_flow_data_bytes (nor a declared size over it)."""
    from flowdeck.server.api.flow_data_servicer import FlowDataServicer
    from flowdeck.server.app import ThreadedServer
    from flowdeck.server.settings import Settings
    from flowdeck.v1 import flow_data_service_pb2 as fpb
    from flowdeck.v1 import flow_data_service_pb2_grpc as frpc

    received = []

    async def no_limit_of_its_own(self, request_iterator, context):
        async for request in request_iterator:
            received.append(len(request.chunk))
        return fpb.UploadFlowDataResponse(size=sum(received))

    monkeypatch.setattr(FlowDataServicer, "UploadFlowData", no_limit_of_its_own)
    server = ThreadedServer(Settings(home=tmp_path, port=0, max_flow_data_bytes=4096), background=False)
    address = server.start()
    try:
        with grpc.insecure_channel(address) as channel:
            upload = frpc.FlowDataServiceStub(channel).UploadFlowData

            def send(size: int, chunks: list[int]):
                received.clear()
                messages = [fpb.UploadFlowDataRequest(metadata=fpb.FlowDataMetadata(flow_name="f", size=size))]
                messages += [fpb.UploadFlowDataRequest(chunk=b"z" * n) for n in chunks]
                return upload(iter(messages), timeout=20)

            assert send(0, [2000, 2000]).size == 4000  # within the limit: the handler gets it all
            for size, chunks in ((0, [2000, 2000, 2000]), (5000, [])):
                with pytest.raises(grpc.RpcError) as err:
                    send(size, chunks)
                assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "FLOWDECK_MAX_FLOW_DATA_BYTES" in err.value.details()
                assert sum(received) <= 4096  # the piece over the limit never reached the handler
    finally:
        server.stop()
