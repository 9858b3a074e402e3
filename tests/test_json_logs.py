"""`--log-format json` (server and agent): every line is one JSON object with
time, level, logger and message, plus the request and run ids where known;
no API key and no storage secret appears in any line."""
from __future__ import annotations

import datetime as dt
import json

import subprocess

from conftest import run_cli
from support.processes import BIN, ServerProcess, stop_process
from support.waiting import wait_for_state
from test_agent_e2e import base_env
from test_metrics import keyed_database  # noqa: F401 - the fixture

FLOW = '''
from flowdeck import flow, get_run_logger


@flow
def quiet():
    get_run_logger().info("hello from the run")
'''
SECRET = "s3-secret-never-logged-0123456789"


def json_lines(text: str, stdout: str = "") -> list[dict]:
    """The log lines of `text`, each parsed; `stdout` is what the process
    printed for its user (listening line, dashboard, client hint), not logs."""
    printed = set(stdout.splitlines())
    out = []
    for line in text.splitlines():
        if not line.strip() or line in printed:
            continue
        record = json.loads(line)  # fails the test on any line that is not one JSON object
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        dt.datetime.fromisoformat(record["time"])
        out.append(record)
    return out


def test_json_logs_of_server_and_agent_parse_and_hold_no_secret(tmp_path, keyed_database):
    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    url, keys = keyed_database
    agent_log = tmp_path / "agent.log"
    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOW)
    server = ServerProcess(tmp_path / "server", "--auth", "--log-format", "json", database_url=url,
                           env={"FLOWDECK_LOG_LEVEL": "DEBUG"})
    server.start()
    admin = FlowdeckClient(server.address, timeout=20, api_key=keys["admin"])
    agent = None
    try:
        admin.create_storage_block(block_type="s3", config={"bucket": "bkt", "aws_access_key_id": "AKIAEXAMPLE",
                                                            "aws_secret_access_key": SECRET})
        _, new_key = admin.create_api_key("made-here", scope="write")
        admin.create_work_queue("main")
        dep, _ = admin.create_deployment("quiet", flow_name="quiet",
                                         flow_data=file_flow_data(tmp_path / "flows.py", "quiet"),
                                         flow_runner={"type": "subprocess", "config": {"stream_output": False}})
        r = run_cli("deployment", "ls", env={"FLOWDECK_API_URL": server.address, "FLOWDECK_API_KEY": keys["revoked"]})
        assert r.returncode != 0  # refused, and logged
        agent = subprocess.Popen(
            [str(BIN / "flowdeck"), "agent", "start", "-q", "main", "--name", "json", "--log-format", "json",
             "--log-level", "DEBUG"], stdout=open(agent_log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env=base_env(tmp_path, FLOWDECK_API_URL=server.address, FLOWDECK_API_KEY=keys["agent"]))
        run = admin.create_flow_run_from_deployment(deployment_id=dep.id)
        wait_for_state(admin, run.id, "COMPLETED")
    finally:
        if agent is not None:
            assert stop_process(agent) == 0
        admin.close()
        server.stop()
    server_lines = json_lines(server.output(), server.stdout())
    agent_lines = json_lines(agent_log.read_text())
    assert server_lines and agent_lines
    # Ids where known: the request's id on the calls that carry one, the run's on the agent's lines.
    assert any(line.get("request_id") and line.get("rpc", "").endswith("CreateDeployment") for line in server_lines)
    assert any(line.get("flow_run_id") == run.id and "finished: COMPLETED" in line["message"] for line in agent_lines)
    assert any(line["level"] == "DEBUG" for line in agent_lines)
    everything = server.output() + agent_log.read_text()
    for secret in (*keys.values(), new_key, SECRET):
        assert secret not in everything
