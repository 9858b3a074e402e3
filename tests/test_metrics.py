"""/metrics of `flowdeck server start`: where it is served, who may scrape it,
and that its series do not grow with the number of runs or deployments."""
from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import insert_test_keys
from support.processes import ServerProcess
from support.waiting import wait_until
from test_agent_e2e import AgentProcess

FLOWS = '''
from flowdeck import flow


@flow
def fine(i: int = 0):
    return i


@flow
def broken(i: int = 0):
    raise RuntimeError(f"run {i} fails on purpose")
'''


def http_base(server: ServerProcess, what: str) -> str:
    """The URL after `what: ` in the server's output ("dashboard", "metrics")."""
    def find():
        m = re.search(rf"^{what}: (http://\S+?)/?(metrics)?$", server.output(), re.M)
        return m and m.group(1)

    return wait_until(find, lambda: f"a {what!r} line in:\n{server.output()}")


def series(text: str) -> set[tuple]:
    """Every sample's (name, labels) in a scrape."""
    return {(s.name, tuple(sorted(s.labels.items())))
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def keyed_database(tmp_path, session_key_material):
    """A migrated SQLite database holding a key per scope (conftest's)."""
    from flowdeck.server.db import Database

    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    db = Database(url, threads=1)
    db.migrate()
    keys = insert_test_keys(db, session_key_material)
    db.close()
    return url, keys


def test_metrics_need_a_key_under_auth(tmp_path, keyed_database):
    url, keys = keyed_database
    server = ServerProcess(tmp_path / "auth", "--auth", database_url=url)
    server.start()
    try:
        metrics = http_base(server, "metrics") + "/metrics"
        refused = httpx.get(metrics, timeout=10)
        assert refused.status_code == 401 and "API key" in refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "flowdeck_" not in refused.text
        wrong = httpx.get(metrics, headers={"authorization": "Bearer fdk_nope_nope"}, timeout=10)
        assert wrong.status_code == 401
        revoked = httpx.get(metrics, headers={"authorization": f"Bearer {keys['revoked']}"}, timeout=10)
        assert revoked.status_code == 401 and "revoked" in revoked.text
        for scope in ("read", "agent", "admin"):  # every scope reads
            ok = httpx.get(metrics, headers={"authorization": f"Bearer {keys[scope]}"}, timeout=10)
            assert ok.status_code == 200, (scope, ok.text)
            assert "flowdeck_grpc_server_handled_total" in ok.text and "process_cpu_seconds_total" in ok.text
        assert keys["read"] not in server.output()
    finally:
        server.stop()
    public = ServerProcess(tmp_path / "public", "--auth", "--metrics-public", database_url=url)
    public.start()
    try:
        assert httpx.get(http_base(public, "metrics") + "/metrics", timeout=10).status_code == 200
    finally:
        public.stop()


def test_no_ui_keeps_metrics_and_no_metrics_drops_them(tmp_path):
    bare = ServerProcess(tmp_path / "no-ui", "--no-ui")
    bare.start()
    try:
        base = http_base(bare, "metrics")
        assert "dashboard:" not in bare.output()
        assert httpx.get(base + "/", timeout=10).status_code == 404  # no dashboard here
        assert "flowdeck_flow_runs_created_total" in httpx.get(base + "/metrics", timeout=10).text
    finally:
        bare.stop()
    quiet = ServerProcess(tmp_path / "no-metrics", "--no-metrics")
    quiet.start()
    try:
        base = http_base(quiet, "dashboard")
        assert "metrics:" not in quiet.output()
        assert httpx.get(base + "/metrics", timeout=10).status_code == 404
        assert httpx.get(base + "/", timeout=10).status_code == 200
    finally:
        quiet.stop()
    neither = ServerProcess(tmp_path / "neither", "--no-ui", "--no-metrics")
    neither.start()
    try:
        out = neither.output()
        assert "metrics:" not in out and "dashboard:" not in out
    finally:
        neither.stop()


def test_series_stay_constant_over_1000_runs_and_100_deployments(tmp_path):
    """100 deployments (two flows, half failing), 100 runs then 900 more through
    an agent: the scrape has the same series after both, and no run id or
    deployment name in any label."""
    from concurrent.futures import ThreadPoolExecutor

    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOWS)
    server = ServerProcess(tmp_path / "server", database_url=f"sqlite:///{tmp_path / 'flowdeck.db'}",
                           env={"FLOWDECK_METRICS_REFRESH_SECONDS": "0.2"})
    server.start()
    client = FlowdeckClient(server.address, timeout=30)
    agent = None
    try:
        metrics = http_base(server, "metrics") + "/metrics"
        client.create_work_queue("main")
        flows = {"fine": file_flow_data(tmp_path / "flows.py", "fine"),
                 "broken": file_flow_data(tmp_path / "flows.py", "broken")}
        deps = [client.create_deployment(f"dep-{i:03d}", flow_name=("fine", "broken")[i % 2],
                                         flow_data=flows[("fine", "broken")[i % 2]],
                                         flow_runner={"type": "in-process"})[0] for i in range(100)]
        agent = AgentProcess(tmp_path, server.address, "main", "counter", limit=8)
        agent.wait_for("connected to")
        runs: list = []

        def run_batch(count: int) -> set[tuple]:
            start = len(runs)
            with ThreadPoolExecutor(8) as pool:
                runs.extend(pool.map(lambda i: client.create_flow_run_from_deployment(
                    deployment_id=deps[i % len(deps)].id, parameters={"i": i}), range(start, start + count)))

            def all_ended():
                ended = client.list_flow_runs(state_types=["COMPLETED", "FAILED"], limit=None)
                return len(ended) == len(runs)

            wait_until(all_ended, f"{len(runs)} runs to end", timeout=300, every=0.5)
            text = httpx.get(metrics, timeout=10).text

            def counted():  # the counters caught up (their gauges are refreshed every 0.2 s)
                nonlocal text
                text = httpx.get(metrics, timeout=10).text
                return (f'flowdeck_flow_runs_finished_total{{state="COMPLETED",work_queue="main"}} {len(runs) / 2}'
                        in text and 'flowdeck_flow_runs{state="PENDING"} 0.0' in text)

            wait_until(counted, lambda: f"the counters at {len(runs)} runs:\n{text}", every=0.3)
            return text

        first = run_batch(100)
        after = run_batch(900)
        assert len(runs) == 1000
        assert series(first) == series(after), (series(after) ^ series(first))
        assert f'flowdeck_flow_runs_finished_total{{state="FAILED",work_queue="main"}} 500.0' in after
        assert 'flowdeck_flow_runs_leased_total{work_queue="main"} 1000.0' in after
        labels = " ".join(v for _, ls in series(after) for _, v in ls)
        assert not [d.name for d in deps if d.name in labels]
        assert not [r.id for r in runs if r.id in after]
        assert "dep-" not in after
    finally:
        if agent is not None:
            agent.stop()
        client.close()
        server.stop()


def test_run_events_count_when_their_transaction_commits_only(db):
    """A run created and finished in a transaction that rolls back counts
    nothing; the same in one that commits counts once."""
    from flowdeck.core import states
    from flowdeck.server import flow_runs, metrics
    from flowdeck.server.run_inputs import FlowRunInput, StateInput

    def snapshot():
        return (metrics.REGISTRY.get_sample_value("flowdeck_flow_runs_created_total"),
                metrics.run_events().get((metrics.FINISHED, states.FAILED, ""), 0))

    def create_and_fail(s):
        run = flow_runs.create(s, FlowRunInput(flow_name="counted"))
        flow_runs.set_state(s, run.id, StateInput(states.RUNNING))
        flow_runs.set_state(s, run.id, StateInput(states.FAILED))

    before = snapshot()
    with pytest.raises(RuntimeError):
        with db.write() as s:
            create_and_fail(s)
            raise RuntimeError("rolled back")
    assert snapshot() == before
    with db.write() as s:
        create_and_fail(s)
    assert snapshot() == (before[0] + 1, before[1] + 1)


def test_an_agent_metrics_port_in_use_stops_the_start_with_one_line(tmp_path):
    import socket

    from conftest import run_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli("agent", "start", "-q", "main", "--metrics-port", str(port), timeout=60,
                    env={"FLOWDECK_API_URL": "127.0.0.1:1", "FLOWDECK_HOME": str(tmp_path)})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"Error: cannot serve the agent's metrics on 127.0.0.1:{port}: "
                                             "Address already in use"], r.stderr
