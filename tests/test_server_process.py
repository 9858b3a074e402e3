"""`flowdeck server start` as a real process: health, reflection, the CLI's
--json output against it, graceful SIGTERM, and a clear error when no server answers."""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import socket
import sqlite3
import subprocess
import threading

import grpc
import pytest

from support.processes import BIN, ServerProcess, clean_env

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TIME_FIELDS = {"created", "updated", "timestamp", "expected_start_time", "start_time", "end_time",
               "next_run_time", "expire_time", "anchor_date"}
DURATION_FIELDS = {"total_run_time", "max_lateness", "interval"}
STATE_TYPES = {"SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def cli(address: str, home: pathlib.Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI as a process; `timeout` bounds how long a failing call may take."""
    return subprocess.run([str(BIN / "flowdeck"), *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(home, FLOWDECK_API_URL=address), stdin=subprocess.DEVNULL)


def cli_json(address, home, *args):
    res = cli(address, home, *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def proc_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("server"), "--no-scheduler")
    yield server.start(), server.home
    assert server.stop() == 0, server.output()


@pytest.fixture
def client(proc_server):
    from flowdeck.client import FlowdeckClient

    c = FlowdeckClient(proc_server[0], timeout=30)
    yield c
    # Leave the module's server empty for the next test.
    for d in c.list_deployments(limit=None):
        c.delete_deployment(d.id)
    for f in c.list_flows(limit=None):
        c.delete_flow(f.id)
    c.close()


def flowdeck_services() -> set[str]:
    import importlib
    import pkgutil

    import flowdeck.v1

    names = set()
    for mod in pkgutil.iter_modules(flowdeck.v1.__path__):
        if mod.name.endswith("_pb2"):
            m = importlib.import_module(f"flowdeck.v1.{mod.name}")
            names |= {s.full_name for s in m.DESCRIPTOR.services_by_name.values()}
    return names


# -- health and reflection ---------------------------------------------------------


def test_health_reports_serving(proc_server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(proc_server[0]) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_every_service(proc_server):
    from google.protobuf import descriptor_pb2
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    expected = flowdeck_services()
    assert {"flowdeck.v1.FlowService", "flowdeck.v1.DeploymentService", "flowdeck.v1.FlowRunService",
            "flowdeck.v1.LogService"} <= expected
    with grpc.insecure_channel(proc_server[0]) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        requests = [reflection_pb2.ServerReflectionRequest(list_services="")]
        requests += [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in sorted(expected)]
        responses = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    listed = {s.name for s in responses[0].list_services_response.service}
    assert expected <= listed
    assert {"grpc.health.v1.Health"} <= listed
    # A generic tool can fetch each service's schema to call it.
    for name, resp in zip(sorted(expected), responses[1:]):
        assert not resp.HasField("error_response"), (name, resp.error_response)
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in resp.file_descriptor_response.file_descriptor_proto]
        services = {f"{f.package}.{s.name}" for f in files for s in f.service}
        assert name in services


# -- the CLI's --json ------------------------------------------------------------


def check_json_value(value, key=""):
    """The --json rules, recursively: times ISO 8601 with offset, durations numbers,
    enums short names, never an omitted field (checked by the callers)."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_json_value(v, k)
        return
    if isinstance(value, list):
        for v in value:
            check_json_value(v, key)
        return
    if value is None:
        return
    if key in TIME_FIELDS:
        assert isinstance(value, str) and ISO.match(value), f"{key}: {value!r} is not ISO 8601 with offset"
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif key in DURATION_FIELDS:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}: {value!r}"
    if isinstance(value, str):
        assert not value.startswith("STATE_TYPE_"), f"{key}: {value!r} is a prefixed enum name"


def proto_fields(message) -> set[str]:
    return {f.name for f in message.DESCRIPTOR.fields}


def check_deployment_json(d: dict):
    from flowdeck.v1 import common_pb2 as c

    assert set(d) == proto_fields(c.Deployment)
    assert set(d["flow_data"]) == proto_fields(c.FlowData)
    assert set(d["flow_runner"]) == proto_fields(c.FlowRunnerSettings)
    check_json_value(d)


def check_flow_run_json(r: dict):
    from flowdeck.v1 import common_pb2 as c

    assert set(r) == proto_fields(c.FlowRun)
    assert set(r["state"]) == proto_fields(c.State)
    assert r["state"]["type"] in STATE_TYPES
    for h in r["state_history"]:
        assert set(h) == proto_fields(c.State) and h["type"] in STATE_TYPES
    check_json_value(r)


def test_deployment_json(proc_server, client):
    address, home = proc_server
    bare, _ = client.create_deployment("bare", flow_name="json-flow")
    client.create_deployment("full", flow_name="json-flow", tags=["a", "b"], parameters={"n": 1, "s": "x"},
                             schedule={"interval": 3600, "timezone": "Europe/Berlin"}, is_schedule_active=False,
                             flow_runner={"type": "subprocess", "config": {"env": {"K": "V"}}},
                             max_lateness=90, description="desc")
    listed = cli_json(address, home, "deployment", "ls", "--json")
    assert [d["name"] for d in listed] == ["bare", "full"]
    for d in listed:
        check_deployment_json(d)

    got = cli_json(address, home, "deployment", "inspect", "json-flow/bare", "--json")
    check_deployment_json(got)
    assert got["id"] == bare.id and got["flow_name"] == "json-flow"
    # Unset: null, [] or {} - never left out.
    assert got["schedule"] is None and got["tags"] == [] and got["parameters"] == {}
    assert got["max_lateness"] is None and got["storage_block_id"] is None and got["next_run_time"] is None
    assert got["flow_runner"] == {"type": "universal", "config": {}}
    assert got["is_schedule_active"] is True

    full = cli_json(address, home, "deployment", "inspect", "json-flow/full", "--json")
    check_deployment_json(full)
    assert full["tags"] == ["a", "b"] and full["parameters"] == {"n": 1, "s": "x"}
    assert full["max_lateness"] == 90 and full["is_schedule_active"] is False
    assert full["schedule"]["interval"] == 3600 and full["schedule"]["timezone"] == "Europe/Berlin"
    assert full["flow_runner"] == {"type": "subprocess", "config": {"env": {"K": "V"}}}

    res = cli(address, home, "deployment", "inspect", "json-flow/missing", "--json")
    assert res.returncode == 1 and "not found" in res.stderr and "Traceback" not in res.stderr


def test_flow_run_json(proc_server, client):
    address, home = proc_server
    client.create_deployment("d", flow_name="run-flow", tags=["t"], parameters={"p": [1, 2]})
    scheduled = client.create_flow_run_from_deployment(deployment_name="run-flow/d", idempotency_key="k")
    done = client.create_flow_run(flow_name="run-flow", expected_start_time=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc))
    client.set_flow_run_state(done.id, "RUNNING")
    client.set_flow_run_state(done.id, "COMPLETED", message="ok")

    runs = cli_json(address, home, "flow-run", "ls", "--json")
    assert [r["id"] for r in runs] == [done.id, scheduled.id]  # started or due, newest expected start first
    for r in runs:
        check_flow_run_json(r)

    s = cli_json(address, home, "flow-run", "inspect", scheduled.id, "--json")
    check_flow_run_json(s)
    assert s["state"]["type"] == "SCHEDULED" and s["state"]["name"] == "Scheduled"
    assert s["start_time"] is None and s["end_time"] is None and s["lease"] is None
    assert s["total_run_time"] == 0 and s["idempotency_key"] == "k"
    assert s["parameters"] == {"p": [1, 2]} and s["tags"] == ["t"]
    assert [h["type"] for h in s["state_history"]] == ["SCHEDULED"]

    d = cli_json(address, home, "flow-run", "inspect", done.name, "--json")
    check_flow_run_json(d)
    assert d["id"] == done.id and d["state"]["type"] == "COMPLETED" and d["state"]["message"] == "ok"
    assert d["deployment_id"] is None and d["idempotency_key"] is None and d["tags"] == []
    assert d["expected_start_time"] in ("2031-01-01T00:00:00Z", "2031-01-01T00:00:00+00:00")
    assert isinstance(d["total_run_time"], (int, float)) and d["total_run_time"] >= 0
    assert [h["type"] for h in d["state_history"]] == ["SCHEDULED", "RUNNING", "COMPLETED"]

    filtered = cli_json(address, home, "flow-run", "ls", "--json", "--state", "completed")
    assert [r["id"] for r in filtered] == [done.id]


def test_limit_and_all(proc_server, client):
    address, home = proc_server
    base = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    ids = [client.create_flow_run(flow_name="many", name=f"run-{i}",
                                  expected_start_time=base + dt.timedelta(minutes=i)).id for i in range(57)]
    for i in range(53):
        client.create_deployment(f"d{i:02d}", flow_name="many")

    # Scheduled in the future: upcoming, soonest first.
    assert cli_json(address, home, "flow-run", "ls", "--json") == []
    assert len(cli_json(address, home, "flow-run", "ls", "--upcoming", "--json")) == 50
    three = cli_json(address, home, "flow-run", "ls", "--upcoming", "--json", "--limit", "3")
    assert [r["id"] for r in three] == ids[:3]
    everything = cli_json(address, home, "flow-run", "ls", "--upcoming", "--json", "--all")
    assert [r["id"] for r in everything] == ids

    assert len(cli_json(address, home, "deployment", "ls", "--json")) == 50
    assert len(cli_json(address, home, "deployment", "ls", "--json", "--limit", "7")) == 7
    assert len(cli_json(address, home, "deployment", "ls", "--json", "--all")) == 53

    bad = cli(address, home, "flow-run", "ls", "--limit", "0")
    assert bad.returncode == 1 and "--limit" in bad.stderr and "Traceback" not in bad.stderr

    # Tables for people still work.
    table = cli(address, home, "deployment", "ls", "--limit", "2")
    assert table.returncode == 0 and "many/d00" in table.stdout


# -- lifecycle ------------------------------------------------------------------


def test_sigterm_exits_promptly_with_an_intact_database(tmp_path):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import FlowdeckError

    server = ServerProcess(tmp_path)
    home, address = server.home, server.start()
    stop_writing = threading.Event()
    busy = threading.Event()
    written = []

    def writer():
        with FlowdeckClient(address, timeout=10, retries=0) as c:
            while not stop_writing.is_set():
                try:
                    run = c.create_flow_run(flow_name="busy")
                    c.set_flow_run_state(run.id, "RUNNING")
                    written.append(run.id)
                    if len(written) >= 20:
                        busy.set()
                except FlowdeckError:
                    return  # the server went away: expected

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        assert busy.wait(60), "the writers did not get going"
        # Killed (a negative code) when SIGTERM was not done after 30 s.
        code = server.stop()
    finally:
        stop_writing.set()
        for t in threads:
            t.join(timeout=30)
    assert code == 0, server.output()
    assert "Traceback" not in server.output()

    db_file = home / "flowdeck.db"
    assert db_file.exists()
    con = sqlite3.connect(db_file)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        n = con.execute("SELECT count(*) FROM flow_runs").fetchone()[0]
    finally:
        con.close()
    # Every acknowledged write is there.
    assert n >= len(written)


def test_server_on_postgres(server_process, pg_database_factory):
    from conftest import require_postgres

    require_postgres()
    from flowdeck.client import FlowdeckClient

    server = server_process("--no-scheduler", env={"FLOWDECK_DATABASE_URL": pg_database_factory()})
    with FlowdeckClient(server.address, timeout=30) as c:
        c.create_deployment("d", flow_name="pg")
        run = c.create_flow_run_from_deployment(deployment_name="pg/d")
    got = cli_json(server.address, server.home, "flow-run", "inspect", run.id, "--json")
    check_flow_run_json(got)
    assert server.stop() == 0, server.output()
    assert not (server.home / "flowdeck.db").exists(), "the Postgres server wrote a SQLite file"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args", [["deployment", "ls"], ["deployment", "ls", "--json"],
                                  ["flow-run", "inspect", "some-run", "--json"]])
def test_unreachable_server_is_one_clear_line(tmp_path, args):
    address = f"127.0.0.1:{closed_port()}"
    res = cli(address, tmp_path, *args)  # (its timeout: no endless retrying)
    assert res.returncode == 1
    out = (res.stdout + res.stderr).strip().splitlines()
    assert len(out) == 1, out
    assert f"cannot reach the flowdeck server at {address}" in out[0]
    assert "Traceback" not in res.stderr


def test_sigterm_right_after_start_is_graceful(tmp_path):
    """The signal handlers are in place before the "listening" line is printed."""
    for i in range(3):
        server = ServerProcess(tmp_path / f"start-{i}", "--no-scheduler", home=tmp_path / "home")
        server.start()
        assert server.stop() == 0, server.output()  # a kill (negative) when SIGTERM did nothing in 30 s
