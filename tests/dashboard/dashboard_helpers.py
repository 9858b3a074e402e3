"""Fixtures and helpers of the dashboard tests. (Not a conftest.py: tests/ has
one, and two modules named conftest collide; test modules import these.)

The dashboard app in process (httpx over ASGITransport), wired to a real
flowdeck gRPC server on 127.0.0.1 port 0 (the shared `server` / `auth_server`
fixtures); data is made through the public API's stubs, as any client would."""
from __future__ import annotations

import datetime as dt
import uuid

import grpc
import httpx
import pytest
from bs4 import BeautifulSoup

from flowdeck.v1 import (
    common_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    flow_run_service_pb2,
    flow_run_service_pb2_grpc,
    log_service_pb2,
    log_service_pb2_grpc,
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Seed:
    """Makes deployments, runs and logs through the API (sync stubs)."""

    def __init__(self, address: str, key: str | None = None):
        self.channel = grpc.insecure_channel(address)
        self.md = (("authorization", f"Bearer {key}"),) if key else None
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)
        self.runs = flow_run_service_pb2_grpc.FlowRunServiceStub(self.channel)
        self.logs = log_service_pb2_grpc.LogServiceStub(self.channel)

    def deployment(self, name: str, flow: str = "hello", *, interval: int = 0, tags=(), parameters=None,
                   **fields) -> common_pb2.Deployment:
        d = common_pb2.Deployment(name=name, flow_name=flow, tags=list(tags), **fields)
        if interval:
            d.schedule.interval.interval.seconds = interval
        if parameters:
            d.parameters.update(parameters)
        resp = self.deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(
            deployment=d, request_id=str(uuid.uuid4())), metadata=self.md, timeout=20)
        return resp.deployment

    def run(self, dep: common_pb2.Deployment, *, state: str = "", **params) -> common_pb2.FlowRun:
        req = flow_run_service_pb2.CreateFlowRunFromDeploymentRequest(deployment_id=dep.id,
                                                                     request_id=str(uuid.uuid4()))
        req.parameters.update(params)
        run = self.runs.CreateFlowRunFromDeployment(req, metadata=self.md, timeout=20)
        if state:
            run = self.state(run, state)
        return run

    def state(self, run, state: str, message: str = "") -> common_pb2.FlowRun:
        return self.runs.SetFlowRunState(flow_run_service_pb2.SetFlowRunStateRequest(
            flow_run_id=run.id, state=common_pb2.State(type=common_pb2.StateType.Value(f"STATE_TYPE_{state}"),
                                                       message=message),
            force=True), metadata=self.md, timeout=20)

    def log(self, run, *messages: str, level: int = 20) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        records = []
        for i, m in enumerate(messages):
            r = common_pb2.LogRecord(flow_run_id=run.id, level=level, logger_name="test", message=m)
            r.timestamp.FromDatetime(now + dt.timedelta(microseconds=i))
            records.append(r)
        self.logs.CreateLogs(log_service_pb2.CreateLogsRequest(logs=records), metadata=self.md, timeout=20)

    def get_run(self, run_id: str) -> common_pb2.FlowRun:
        return self.runs.GetFlowRun(flow_run_service_pb2.GetFlowRunRequest(id=run_id), metadata=self.md, timeout=20)

    def runs_of(self, dep) -> list:
        resp = self.runs.ListFlowRuns(flow_run_service_pb2.ListFlowRunsRequest(deployment_id=dep.id, page_size=100),
                                      metadata=self.md, timeout=20)
        return list(resp.flow_runs)


@pytest.fixture
def seed(server):
    s = Seed(server.address)
    yield s
    s.channel.close()


@pytest.fixture
async def dash(server):
    """An open dashboard (no --auth) on the test server."""
    from flowdeck.server.dashboard.app import create_app

    app = create_app(server.address)
    async with make_client(app) as client:
        client.app = app
        yield client
    await app.state.dashboard.close()


@pytest.fixture
async def auth_dash(auth_server, api_keys):
    """A dashboard with --auth on the auth test server; `.keys` are its API keys by scope."""
    from flowdeck.server.dashboard.app import create_app

    app = create_app(auth_server.address, auth=True)
    async with make_client(app) as client:
        client.app = app
        client.keys = api_keys
        yield client
    await app.state.dashboard.close()


@pytest.fixture
def admin_seed(auth_server, api_keys):
    s = Seed(auth_server.address, api_keys["admin"])
    yield s
    s.channel.close()



def make_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test")


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def csrf_of(response) -> str:
    return soup(response).find("input", attrs={"name": "csrf"})["value"]


async def login(client, key: str, next_url: str = "/"):
    page = await client.get("/login")
    return await client.post("/login", data={"api_key": key, "csrf": csrf_of(page), "next": next_url})
