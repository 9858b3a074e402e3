"""The proto is the contract: a Node.js program using only the client generated
by `scripts/gen-clients node` drives the whole lifecycle against a real server,
with a real Python agent serving the queue, and reads the error details from
the standard grpc-status-details-bin trailer (the parameter checks' field
violations among them)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT, in_process_server, run_cli
from support.processes import stop_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node_client():
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the polyglot client test (it is on every machine of this kind)")
    out = ROOT / "tools" / "gen" / f"test-{uuid.uuid4().hex[:8]}"
    try:
        # PYTHON: the interpreter whose googleapis-common-protos holds the google/rpc protos.
        subprocess.run([str(ROOT / "scripts" / "gen-clients"), "node", str(out)], check=True,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})
        yield node, out
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def live_server(database_url, tmp_path):
    """A server with its scheduler and dispatcher running (background loops on)."""
    server = in_process_server(tmp_path / "server-home", background=True, database_url=database_url,
                               scheduler_loop_seconds=1.0)
    yield server.address
    server.stop()


def test_node_client_drives_the_lifecycle(node_client, live_server, tmp_path):
    node, gen = node_client
    tag = f"node-{uuid.uuid4().hex[:8]}"
    env = {"FLOWDECK_API_URL": live_server, "FLOWDECK_HOME": str(tmp_path / "cli-home")}
    made = run_cli("work-queue", "create", tag, "--tag", tag, env=env)
    assert made.returncode == 0, made.stderr
    agent_log = open(tmp_path / "agent.log", "w")
    agent = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "flowdeck"),
         "agent", "start", "--work-queue", tag, "--name", "node-test-agent"],
        env={**os.environ, **env, "FLOWDECK_HOME": str(tmp_path / "agent-home")},
        stdout=agent_log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        result = subprocess.run(
            [node, str(ROOT / "tools" / "examples" / "lifecycle.mjs")],
            env={**os.environ, "FLOWDECK_ADDR": live_server, "FLOWDECK_GEN": str(gen), "FLOWDECK_QUEUE_TAG": tag},
            capture_output=True, text=True, timeout=180, cwd=ROOT / "tools",
        )
    finally:
        stop_process(agent)
        agent_log.close()
    detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\nagent:\n{(tmp_path / 'agent.log').read_text()[-3000:]}"
    assert result.returncode == 0, detail
    steps = {s["step"]: s for s in (json.loads(line) for line in result.stdout.splitlines()
                                    if line.startswith('{"step"'))}
    assert list(steps) == [
        "reflection-and-health", "deployment-round-trip", "scheduled-and-manual-runs",
        "agent-completed", "error-codes", "error-details", "parameter-violations", "done",
    ], detail
    details = steps["error-details"]
    assert details["NOT_FOUND"] == {"reason": "DEPLOYMENT_NOT_FOUND", "domain": "flowdeck.dev", "metadata": {},
                                    "violations": []}, detail
    assert details["INVALID_ARGUMENT"] == {
        "reason": "INVALID_FIELD", "domain": "flowdeck.dev", "metadata": {"field": "deployment.name"},
        "violations": [{"field": "deployment.name", "description": "'': is required"}],
    }, detail
    # Parameters checked against the deployment's schema, read from the BadRequest.
    assert steps["parameter-violations"] == {
        "step": "parameter-violations",
        "wrong-type": [{"field": "parameters.times", "description": "'abc' is not of type 'integer'"}],
        "missing-required": [{"field": "parameters.name", "description": "is required"}],
        "unknown": [{"field": "parameters.colour",
                     "description": "is not a parameter of this flow (parameters: name, nested, times)"}],
    }, detail


def test_gen_clients_refuses_unknown_language(tmp_path):
    r = subprocess.run([str(ROOT / "scripts" / "gen-clients"), "cobol", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "no generator for 'cobol'" in r.stderr
