"""Agents as real processes (`flowdeck agent start`) against a real server
process (`flowdeck server start`), running real flows in fresh processes.

Times are kept short: the lease TTL is 3 s and the agents' reconnect backoff is
capped at 1 s; the server outage is the issue's 20 s. Nothing is timed with a
clock: "at once" is checked by the order of events (the dispatcher's safety
tick is an hour, so a push came from its event) and by why a run moved (a
closed stream or a lapsed lease, as its state history says). The contest of agents
uses the issue's 2,000 runs with the in-process runner for the flows (a fresh
process per run would take minutes); the agents, the server and the leases are
the real thing. Process-heavy tests run on
SQLite; the contest, which is about the database, runs on every backend.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BACKENDS, run_cli
from support.processes import BIN, ServerProcess, clean_env, stop_process
from support.waiting import wait_for_state as wait_state
from support.waiting import wait_until

TTL = 3.0
NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731

FLOW_SOURCE = '''
import os, time
from flowdeck import flow, get_run_logger


def _mark(what, tag):
    with open(os.environ["COUNT_FILE"], "a") as f:
        f.write(f"{what} {tag} {os.getpid()} {time.time():.6f}\\n")


@flow
def work(tag: str = "x", sleep: float = 0.0):
    _mark("start", tag)
    print(f"working on {tag}")
    get_run_logger().info("logger line for %s", tag)
    time.sleep(sleep)
    _mark("end", tag)
    return tag


@flow(log_prints=False)
def count(tag: str = "x"):
    _mark("start", tag)
    time.sleep(0.005)
    _mark("end", tag)
'''

# A "python" that takes its time to start when the agent's environment says so:
# the run it was given stays PENDING (leased, not started) meanwhile.
SLOW_PYTHON = f'''#!/bin/sh
if [ -n "$FLOWDECK_TEST_SLOW_START" ]; then sleep 60; fi
exec {sys.executable} "$@"
'''


def base_env(tmp: pathlib.Path, **extra) -> dict:
    return clean_env(tmp / "home", COUNT_FILE=tmp / "count.txt", **extra)


def server_process(tmp: pathlib.Path, database_url: str, **env) -> ServerProcess:
    return ServerProcess(tmp, database_url=database_url,
                         env=dict(FLOWDECK_LEASE_TTL_SECONDS=TTL, FLOWDECK_SCHEDULER_LOOP_SECONDS=1,
                                  FLOWDECK_SHUTDOWN_GRACE=2, **env))


class AgentProcess:
    def __init__(self, tmp: pathlib.Path, address: str, queues: str | list[str], name: str, limit: int = 4,
                 **env):
        self.log_path = tmp / f"agent-{name}.log"
        self.name = name
        e = base_env(tmp, FLOWDECK_API_URL=address, FLOWDECK_AGENT_BACKOFF_MAX="1",
                     FLOWDECK_AGENT_SHUTDOWN_GRACE="10", FLOWDECK_AGENT_CANCEL_GRACE="3", **env)
        queue_flags = [f for q in ([queues] if isinstance(queues, str) else queues) for f in ("--work-queue", q)]
        self.proc = subprocess.Popen([str(BIN / "flowdeck"), "agent", "start", *queue_flags,
                                      "--name", name, "--limit", str(limit)],
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT, env=e)  # noqa: SIM115

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        def logged():
            assert self.proc.poll() is None, self.log()
            return self.log().count(text) >= count

        wait_until(logged, lambda: f"{text!r} in the log of {self.name}:\n{self.log()}", timeout)

    def stop(self, timeout: float = 30) -> int:
        return stop_process(self.proc, timeout)


@pytest.fixture
def world(tmp_path):
    """A server process on SQLite; agents started by the test are stopped after it."""
    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOW_SOURCE)
    # The dispatcher's safety tick is an hour: a run leased or a cancel pushed
    # within a test got there by its event or its due time, i.e. at once.
    server = server_process(tmp_path, f"sqlite:///{tmp_path / 'flowdeck.db'}",
                            FLOWDECK_DISPATCHER_SAFETY_TICK_SECONDS=3600)
    server.start()
    from flowdeck.client import FlowdeckClient

    client = FlowdeckClient(server.address, timeout=20)
    agents: list[AgentProcess] = []

    class World:
        pass

    w = World()
    w.tmp, w.server, w.client, w.agents = tmp_path, server, client, agents

    def agent(queues, name, **kw):
        a = AgentProcess(tmp_path, server.address, queues, name, **kw)
        agents.append(a)
        a.wait_for("connected to")
        return a

    w.agent = agent
    yield w
    for a in agents:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()
    client.close()
    server.stop()
    for log in sorted(tmp_path.glob("*.log")):  # shown by pytest when the test failed
        print(f"----- {log.name}\n" + "\n".join(l for l in log.read_text().splitlines() if "alembic" not in l))


def deployment(w, name, flow="work", **fields):
    from flowdeck.flow_data import file_flow_data

    dep, _ = w.client.create_deployment(name, flow_name=flow, flow_data=file_flow_data(w.tmp / "flows.py", flow),
                                        **fields)
    return dep


def gone(pid: int) -> bool:
    """No process has this id (its parent has reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def marks(tmp: pathlib.Path) -> list[tuple[str, str, int, float]]:
    path = tmp / "count.txt"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        what, tag, pid, t = line.split()
        out.append((what, tag, int(pid), float(t)))
    return out


# -- tests ----------------------------------------------------------------------------------

def test_flow_runner_settings_round_trip_without_grpc():
    code = (
        "import sys\n"
        "from flowdeck.flow_runners import UniversalFlowRunner, SubprocessFlowRunner, FlowRunnerSettings, "
        "runner_from_settings\n"
        "s = SubprocessFlowRunner(virtualenv='/opt/venv', env={'A': 1}, stream_output=False).to_settings()\n"
        "assert isinstance(s, FlowRunnerSettings) and s.type == 'subprocess', s\n"
        "assert s.config == {'env': {'A': '1'}, 'stream_output': False, 'python': None, "
        "'virtualenv': '/opt/venv', 'working_dir': None}, s.config\n"
        "r = runner_from_settings(s)\n"
        "assert r == SubprocessFlowRunner(virtualenv='/opt/venv', env={'A': '1'}, stream_output=False)\n"
        "assert r.python_executable('py') == '/opt/venv/bin/python'\n"
        "u = UniversalFlowRunner(env={'X': 'y'})\n"
        "assert (u.type, u.config) == ('universal', {'env': {'X': 'y'}})\n"
        "assert runner_from_settings({'type': '', 'config': {}}) == UniversalFlowRunner()\n"
        "try:\n    runner_from_settings({'type': 'warp'})\nexcept ValueError as e:\n    assert 'warp' in str(e)\n"
        "else:\n    raise AssertionError('unknown type accepted')\n"
        "assert 'grpc' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_scheduled_flow_runs_end_to_end_with_logs_lease_info_and_cancel(world):
    w = world
    w.client.create_work_queue("main")
    anchor = NOW() + dt.timedelta(seconds=1.5)
    dep = deployment(w, "hourly", parameters={"tag": "scheduled"},
                     schedule={"interval": 3600, "anchor_date": anchor.isoformat()})
    w.agent("main", "alpha")
    runs = w.client.list_flow_runs(deployment_id=dep.id, state_types=["SCHEDULED"], newest_first=False, limit=5)
    first = min(runs, key=lambda r: r.expected_start_time)
    assert first.auto_scheduled and abs((first.expected_start_time - anchor).total_seconds()) < 0.01
    done = wait_state(w.client, first.id, "COMPLETED")
    started = [h for h in done.state_history if h.type == "PENDING"][0].timestamp
    # Leased when due: not before, and (the safety tick being an hour) by the
    # dispatcher waking at the due time.
    assert started >= anchor
    logs = run_cli("flow-run", "logs", first.id, env={"FLOWDECK_API_URL": w.server.address}).stdout
    assert "working on scheduled" in logs and "logger line for scheduled" in logs

    # While a run is held, inspect shows the agent and the lease expiry.
    long = w.client.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"tag": "long", "sleep": 60})
    running = wait_state(w.client, long.id, "RUNNING")
    assert running.lease.agent_name == "alpha" and running.lease.expire_time > NOW()
    env = {"FLOWDECK_API_URL": w.server.address}
    out = run_cli("flow-run", "inspect", long.id, env=env).stdout
    assert "held by agent alpha" in out
    assert json.loads(run_cli("flow-run", "inspect", long.id, "--json", env=env).stdout)["lease"]["agent_name"] == "alpha"
    out = run_cli("deployment", "inspect", "work/hourly", env=env).stdout
    assert "Runs held by agents" in out and "alpha" in out

    # Cancel: the agent stops the flow's process and the run ends CANCELLED.
    pid = [m[2] for m in marks(w.tmp) if m[1] == "long"][0]
    r = run_cli("flow-run", "cancel", long.id, env=env)
    assert r.returncode == 0 and "agent was told" in r.stdout
    cancelled = wait_state(w.client, long.id, "CANCELLED")
    # The agent stopped it (the cancel was pushed to it), not a lapsed lease.
    assert "stopped the flow's process" in cancelled.state.message
    wait_until(lambda: gone(pid), f"the flow's process {pid} to end")
    assert not [m for m in marks(w.tmp) if m[0] == "end" and m[1] == "long"]


def test_kill_9_agent_crashes_its_running_run_and_frees_its_unstarted_one(world):
    w = world
    slow = w.tmp / "slow-python"
    slow.write_text(SLOW_PYTHON)
    slow.chmod(0o755)
    w.client.create_work_queue("crashy")
    dep_long = deployment(w, "long", parameters={"tag": "long", "sleep": 60})
    dep_slow = deployment(w, "slow", parameters={"tag": "slow"},
                          flow_runner={"type": "subprocess", "config": {"python": str(slow)}})
    a = w.agent("crashy", "doomed", limit=2, FLOWDECK_TEST_SLOW_START="1")
    running = w.client.create_flow_run_from_deployment(deployment_id=dep_long.id)
    wait_state(w.client, running.id, "RUNNING")
    pending = w.client.create_flow_run_from_deployment(deployment_id=dep_slow.id)
    a.wait_for(f"in process", count=2)
    assert w.client.get_flow_run(pending.id).state.type == "PENDING"  # leased, not started
    b = w.agent("crashy", "survivor", limit=2)
    # Heartbeats only move this later: the lease lapses at this moment or after.
    expires = w.client.get_flow_run(running.id).lease.expire_time
    a.proc.kill()  # kill -9
    a.proc.wait()
    # The un-started run goes to the other agent at once (when the dead agent's
    # stream closes, not when its lease lapses) and runs there, once.
    moved = wait_state(w.client, pending.id, "COMPLETED")
    assert moved.lease is None and [h for h in moved.state_history if h.type == "RUNNING"]
    assert any("lease stream of agent doomed closed" in h.message for h in moved.state_history), \
        [h.message for h in moved.state_history]
    holders = [m[2] for m in marks(w.tmp) if m[1] == "slow"]
    assert len(holders) == 2 and holders[0] == holders[1]  # one start, one end, one process
    # The running one becomes CRASHED when its lease lapses (the agent might
    # have come back until then), not when its stream closed.
    crashed = wait_state(w.client, running.id, "CRASHED")
    assert crashed.state.timestamp >= expires
    assert "doomed" in crashed.state.message and "stopped heartbeating" in crashed.state.message
    # Its flow process died with the agent: it never finished, nothing ran twice.
    assert [m[0] for m in marks(w.tmp) if m[1] == "long"] == ["start"]
    assert "Traceback" not in b.log()


def test_server_outage_under_a_connected_agent(world):
    """Stop the server for 20 s while a flow runs: the agent logs one line per
    failed attempt, reconnects by itself, the in-flight run finishes and
    reports, and new runs are leased again."""
    w = world
    w.client.create_work_queue("main")
    dep = deployment(w, "d")
    a = w.agent("main", "steady")
    inflight = w.client.create_flow_run_from_deployment(deployment_id=dep.id,
                                                        parameters={"tag": "inflight", "sleep": 22})
    wait_state(w.client, inflight.id, "RUNNING")
    w.server.stop()
    time.sleep(20)
    w.server.start()
    a.wait_for("connected to", count=2, timeout=60)
    done = wait_state(w.client, inflight.id, "COMPLETED")
    assert [h.type for h in done.state_history][-2:] == ["RUNNING", "COMPLETED"]
    after = w.client.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"tag": "after"})
    wait_state(w.client, after.id, "COMPLETED")
    tags = [m[1] for m in marks(w.tmp) if m[0] == "start"]
    assert sorted(tags) == ["after", "inflight"]
    log = a.log()
    errors = [line for line in log.splitlines() if "lease stream" in line and "WARNING" in line]
    assert errors and all("reconnecting in" in line for line in errors)
    assert "Traceback" not in log


def test_paused_queue_then_resume_and_graceful_sigterm(world):
    w = world
    w.client.create_work_queue("held", tags=["held"], is_paused=True)
    w.client.create_work_queue("open", tags=["open"])
    dep = deployment(w, "d", tags=["held"])
    a = w.agent(["held", "open"], "patient")
    run = w.client.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"tag": "paused", "sleep": 2})
    # A run on the open queue, created after: the dispatch pass that leases it
    # also looks at the paused queue, with the first run due there.
    probe = w.client.create_flow_run_from_deployment(deployment_id=deployment(w, "probe", tags=["open"]).id,
                                                     parameters={"tag": "probe"})
    wait_state(w.client, probe.id, "COMPLETED")
    assert w.client.get_flow_run(run.id).state.type == "SCHEDULED"
    t0 = NOW()
    r = run_cli("work-queue", "resume", "held", env={"FLOWDECK_API_URL": w.server.address})
    assert r.returncode == 0, r.stderr
    got = wait_state(w.client, run.id, "RUNNING")
    # Leased after the resume (and, the safety tick being an hour, because of it).
    leased_at = [h for h in got.state_history if h.type == "PENDING"][-1].timestamp
    assert leased_at >= t0
    # SIGTERM: the running flow gets to finish, then the agent exits 0.
    assert a.stop(timeout=20) == 0
    assert w.client.get_flow_run(run.id).state.type == "COMPLETED"
    assert "agent patient stopped" in a.log()


@pytest.mark.parametrize("backend", BACKENDS)
def test_agents_compete_for_many_due_runs(tmp_path, backend, pg_database_factory):
    """Four agents, 2,000 runs due at once: every run executes exactly once and
    ends COMPLETED, and the queue's limit of 8 holds at every moment."""
    n, limit = 2000, 8
    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOW_SOURCE)
    url = f"sqlite:///{tmp_path / 'flowdeck.db'}" if backend == "sqlite" else pg_database_factory()
    server = server_process(tmp_path, url)
    server.start()
    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    client = FlowdeckClient(server.address, timeout=30)
    agents = []
    try:
        client.create_work_queue("contest", concurrency_limit=limit)
        dep, _ = client.create_deployment("many", flow_name="count",
                                          flow_data=file_flow_data(tmp_path / "flows.py", "count"),
                                          flow_runner={"type": "in-process"})
        agents = [AgentProcess(tmp_path, server.address, "contest", f"a{i}", limit=4) for i in range(4)]
        for a in agents:
            a.wait_for("connected to")
        due = NOW() + dt.timedelta(seconds=2)
        with ThreadPoolExecutor(8) as pool:
            runs = list(pool.map(lambda i: client.create_flow_run_from_deployment(
                deployment_id=dep.id, parameters={"tag": f"r{i}"}, expected_start_time=due), range(n)))
        deadline = time.monotonic() + 400
        while True:
            done = client.list_flow_runs(deployment_id=dep.id, state_types=["COMPLETED"], limit=None)
            if len({r.id for r in done}) == n:
                done = client.list_flow_runs(deployment_id=dep.id, limit=None)  # nothing moves now
                break
            assert time.monotonic() < deadline, f"{len(done)} of {n} completed"
            time.sleep(0.25)
        elapsed = (max(r.end_time for r in done) - due).total_seconds()
        print(f"\n{backend}: {n} runs through 4 agents (queue limit {limit}) in {elapsed:.2f}s "
              f"= {n / elapsed:.0f} runs/s")
        m = marks(tmp_path)
        starts = sorted(t for what, t, _, _ in m if what == "start")
        assert starts == sorted(f"r{i}" for i in range(n))  # every run exactly once
        events = sorted((t, 1 if what == "start" else -1) for what, _, _, t in m)
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        assert peak <= limit, peak
        assert len({pid for _, _, pid, _ in m}) >= 2  # the agents really competed
        assert {r.id for r in runs} == {r.id for r in done} and {r.state.type for r in done} == {"COMPLETED"}
    finally:
        for a in agents:
            a.stop()
        client.close()
        server.stop()
