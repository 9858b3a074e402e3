"""In-process server on port 0, driven by the real client."""
import pytest

from flowdeck import exceptions as exc


def test_create_deployment_upserts_and_reports(client):
    dep, created = client.create_deployment("daily", flow_name="hello-world", tags=["a"], parameters={"n": 3})
    assert created
    again, created2 = client.create_deployment("daily", flow_name="hello-world", tags=["b"])
    assert not created2
    assert again.id == dep.id and again.created == dep.created and again.updated > dep.updated
    assert again.tags == ["b"] and again.parameters == {}
    got = client.get_deployment_by_name("hello-world/daily")
    assert got.id == dep.id and got.flow_name == "hello-world"


def test_errors_have_fitting_codes(client):
    with pytest.raises(exc.NotFoundError):
        client.get_deployment_by_name("nope/nope")
    with pytest.raises(exc.InvalidArgumentError, match="name"):
        client.get_deployment_by_name("no-slash")
    with pytest.raises(exc.InvalidArgumentError, match="deployment.name"):
        client.create_deployment("", flow_name="f")
    with pytest.raises(exc.InvalidArgumentError, match="flow_runner.type"):
        client.create_deployment("d", flow_name="f", flow_runner={"type": "warp-drive"})
    assert client.list_deployments() == []


def test_run_from_deployment_copies_and_overrides(client):
    dep, _ = client.create_deployment("d", flow_name="f", tags=["t"], parameters={"a": 1, "b": "x"},
                                      flow_runner={"type": "subprocess", "config": {"env": {"K": "V"}}})
    run = client.create_flow_run_from_deployment(deployment_name="f/d", parameters={"b": "y"}, tags=["extra"])
    assert run.parameters == {"a": 1, "b": "y"}
    assert run.tags == ["t", "extra"]
    assert run.flow_runner.type == "subprocess" and run.flow_runner.config == {"env": {"K": "V"}}
    assert run.deployment_id == dep.id and run.state.type == "SCHEDULED"
    assert run.expected_start_time is not None


def test_idempotency_key_returns_existing_run(client):
    a = client.create_flow_run(flow_name="f", idempotency_key="k1")
    b = client.create_flow_run(flow_name="f", idempotency_key="k1")
    assert a.id == b.id
    assert len(client.list_flow_runs(flow_name="f")) == 1


def test_state_transitions_are_enforced(client):
    run = client.create_flow_run(flow_name="f")
    run = client.set_flow_run_state(run.id, "RUNNING")
    assert run.start_time is not None
    with pytest.raises(exc.FailedPreconditionError, match="RUNNING.*SCHEDULED"):
        client.set_flow_run_state(run.id, "SCHEDULED")
    run = client.set_flow_run_state(run.id, "COMPLETED")
    assert run.end_time is not None and run.total_run_time >= 0
    with pytest.raises(exc.FailedPreconditionError, match="COMPLETED.*RUNNING"):
        client.set_flow_run_state(run.id, "RUNNING")
    forced = client.set_flow_run_state(run.id, "RUNNING", force=True)
    assert forced.state.type == "RUNNING"
    history = [s.type for s in client.get_flow_run(run.id).state_history]
    assert history == ["SCHEDULED", "RUNNING", "COMPLETED", "RUNNING"]


def test_request_id_replays_first_response(client, server, wire):
    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc

    stub = wire.stub(server.address, dgrpc.DeploymentServiceStub)
    msg = c.Deployment(name="d", flow_name="f", tags=["one"])
    req = dpb.CreateDeploymentRequest(deployment=msg, request_id="6f1c1d2e-8a53-4b7f-9a51-0f0c2f0d7e11")
    first = stub.CreateDeployment(req)
    # Same request_id, different body: the first response comes back, nothing changes.
    req.deployment.tags[:] = ["two"]
    second = stub.CreateDeployment(req)
    assert second == first and second.created
    assert client.get_deployment_by_name("f/d").tags == ["one"]


def test_list_filters_and_paginates(client, server, wire):
    for i in range(7):
        client.create_deployment(f"d{i}", flow_name="f" if i % 2 else "g", tags=["even"] if i % 2 == 0 else ["odd"])
    assert len(client.list_deployments(limit=None)) == 7
    assert {d.name for d in client.list_deployments(flow_name="f", limit=None)} == {"d1", "d3", "d5"}
    assert {d.name for d in client.list_deployments(tags=["even"], limit=None)} == {"d0", "d2", "d4", "d6"}
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc

    stub = wire.stub(server.address, dgrpc.DeploymentServiceStub)
    page = stub.ListDeployments(dpb.ListDeploymentsRequest(page_size=3))
    assert len(page.deployments) == 3 and page.next_page_token
    seen = [d.name for d in page.deployments]
    while page.next_page_token:
        page = stub.ListDeployments(dpb.ListDeploymentsRequest(page_size=3, page_token=page.next_page_token))
        seen += [d.name for d in page.deployments]
    assert sorted(seen) == [f"d{i}" for i in range(7)]


def test_update_deployment_with_mask(client, server, wire):
    import grpc
    from google.protobuf import field_mask_pb2

    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc

    dep, _ = client.create_deployment("d", flow_name="f", tags=["a"], description="keep")
    upd = client.update_deployment(dep.id, tags=["b"])
    assert upd.tags == ["b"] and upd.description == "keep"
    stub = wire.stub(server.address, dgrpc.DeploymentServiceStub)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateDeployment(dpb.UpdateDeploymentRequest(
            deployment=c.Deployment(id=dep.id), update_mask=field_mask_pb2.FieldMask(paths=["bogus"])))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in err.value.details()


def test_logs_round_trip(client):
    import datetime as dt

    run = client.create_flow_run(flow_name="f")
    now = dt.datetime.now(dt.timezone.utc)
    n = client.create_logs([{"flow_run_id": run.id, "timestamp": now + dt.timedelta(seconds=i), "level": 20,
                             "logger_name": "t", "message": f"line {i}"} for i in range(5)])
    assert n == 5
    assert [r.message for r in client.list_logs(run.id)] == [f"line {i}" for i in range(5)]
