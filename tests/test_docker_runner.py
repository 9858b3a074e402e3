"""The Docker flow runner on a real Docker Engine: a server process with a 3 s
lease TTL, agents as real processes (`flowdeck agent start`), each run in its
own container of an image built by `flowdeck image build` (no registry).

Docker fixtures and the leftover check: tests/docker_fixtures.py. Without a
Docker Engine these tests skip locally and fail in CI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import run_cli
from docker_fixtures import (SESSION_LABELS, base_image, docker_engine, flowdeck_image,  # noqa: F401
                             no_leftover_containers, session_containers)
from test_agent_e2e import TTL, AgentProcess, server_process, wait_state
from test_s3_storage import KEY_ID, SECRET, moto_endpoint, s3_client  # noqa: F401

FLOWS = '''
import os, time
from flowdeck import flow


@flow
def hello(name: str = "world", count: int = 1, ratio: float = 0.5):
    inside = os.path.exists("/.dockerenv")
    print(f"hello {name} x{count} ratio={ratio!r} types={type(count).__name__},{type(ratio).__name__} "
          f"in a container: {inside}")
    return count * 2


@flow
def sleeper(seconds: float = 120):
    print("sleeping", flush=True)
    time.sleep(seconds)


@flow
def stubborn(seconds: float = 120):
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    time.sleep(seconds)


@flow
def hog(mb: int = 600):
    chunks = [b"x" * (1024 * 1024) for _ in range(mb)]
    print("allocated", len(chunks), "MB")
'''


def docker_runner(tmp, default_image, **config) -> dict:
    """A docker runner's settings that show the test's folder (where flows.py is)."""
    return {"type": "docker", "config": {"image": default_image, "labels": SESSION_LABELS, "volumes": [f"{tmp}:{tmp}:ro"],
                                         **config}}


def run_containers(engine, run_id: str) -> list:
    return engine.containers.list(all=True, filters={"label": f"io.flowdeck.flow-run-id={run_id}"})


def wait_until(what, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def dworld(tmp_path, flowdeck_image, docker_engine, no_leftover_containers):
    """A server process on SQLite and the test image; agents are killed after the test."""
    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOWS)
    server = server_process(tmp_path, f"sqlite:///{tmp_path / 'flowdeck.db'}")
    server.start()
    from flowdeck.client import FlowdeckClient

    class World:
        pass

    w = World()
    w.tmp, w.server, w.image, w.engine, w.agents = tmp_path, server, flowdeck_image, docker_engine, []
    w.client = FlowdeckClient(server.address, timeout=20)
    w.client.create_work_queue("docker")

    def agent(name="dock", **env):
        a = AgentProcess(tmp_path, server.address, "docker", name, **env)
        w.agents.append(a)
        a.wait_for("connected to")
        return a

    def deployment(name, flow, **runner_config):
        from flowdeck.flow_data import file_flow_data

        dep, _ = w.client.create_deployment(name, flow_name=flow, flow_data=file_flow_data(tmp_path / "flows.py", flow),
                                            flow_runner=docker_runner(tmp_path, flowdeck_image, **runner_config))
        return dep

    w.agent, w.deployment = agent, deployment
    yield w
    for a in w.agents:
        if a.proc.poll() is None:
            a.stop(timeout=30)
    w.client.close()
    server.stop()
    for log in sorted(tmp_path.glob("*.log")):  # shown by pytest when the test failed
        print(f"----- {log.name}\n" + "\n".join(l for l in log.read_text().splitlines() if "alembic" not in l))


# -- settings and validation (no Docker needed) ---------------------------------------------

def test_runner_config_table_names_the_runner_objects_fields():
    from flowdeck.core.runner_config import REQUIRED, RUNNER_CONFIG
    from flowdeck.flow_runners import RUNNERS, DockerFlowRunner

    assert set(RUNNER_CONFIG) == set(RUNNERS)
    for kind, cls in RUNNERS.items():
        assert set(RUNNER_CONFIG[kind]) == set(cls.model_fields) - {"type"}, kind
        assert set(REQUIRED.get(kind, ())) == {n for n, f in cls.model_fields.items() if f.is_required()}, kind
    runner = DockerFlowRunner(image="etl:1", mem_limit="256m", cpus=0.5, env={"N": 1}, volumes=["/data:/data:ro"])
    settings = runner.to_settings()
    assert settings.type == "docker" and settings.config["network_mode"] == "host"
    assert settings.config["pull"] == "never" and settings.config["env"] == {"N": "1"}
    from flowdeck.flow_runners import runner_from_settings

    assert runner_from_settings(settings) == runner
    for bad in ({"image": ""}, {"image": "x", "volumes": ["relative"]}, {"image": "x", "mem_limit": "lots"},
                {"image": "x", "pull": "sometimes"}, {"image": "x", "cpus": 0}, {"image": "x", "gpus": 1}):
        with pytest.raises(ValueError):
            DockerFlowRunner(**bad)


@pytest.mark.parametrize("config, field, words", [
    ({"image": "x", "memory": "1g"}, "config.memory", "the docker runner has no such setting"),
    ({"env": {}}, "config.image", "the docker runner needs it"),
    ({"image": "x", "pull": "sometimes"}, "config.pull", "must be one of never, missing, always"),
    ({"image": "x", "volumes": "/a:/a"}, "config.volumes", "must be a list"),
    ({"image": "x", "auto_remove": "yes"}, "config.auto_remove", "must be true or false"),
])
def test_server_refuses_bad_docker_runner_config(client, config, field, words):
    from flowdeck.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as e:
        client.create_deployment("d", flow_name="f", flow_runner={"type": "docker", "config": config})
    assert f"invalid deployment.flow_runner.{field} " in e.value.message and words in e.value.message
    assert client.list_deployments() == []
    # An unknown key for the other runners too; a good docker config is stored as given.
    with pytest.raises(InvalidArgumentError, match="subprocess runner has no such setting"):
        client.create_deployment("d", flow_name="f", flow_runner={"type": "subprocess", "config": {"image": "x"}})
    dep, _ = client.create_deployment("d", flow_name="f", flow_runner={"type": "docker", "config": {
        "image": "etl:1", "mem_limit": "256m", "cpus": 1.5, "volumes": ["/a:/a:ro"]}})
    assert dep.flow_runner.type == "docker" and dep.flow_runner.config["cpus"] == 1.5


# -- images ---------------------------------------------------------------------------------------

def test_image_build_keeps_an_unchanged_image_and_refuses_a_missing_base(flowdeck_image, base_image, docker_engine):
    from flowdeck.docker_image import FINGERPRINT_LABEL

    before = docker_engine.images.get(flowdeck_image)
    assert before.labels.get(FINGERPRINT_LABEL)
    r = run_cli("image", "build", "--base", base_image, "--tag", flowdeck_image, "-q")
    assert r.returncode == 0 and f"Image {flowdeck_image} is up to date" in r.stdout, r.stdout + r.stderr
    assert docker_engine.images.get(flowdeck_image).id == before.id
    out = docker_engine.containers.run(flowdeck_image, ["python3", "-c", "import flowdeck, sys; print(sys.prefix)"],
                                       network_mode="host", remove=True, labels=SESSION_LABELS)
    assert out.decode().strip() == "/opt/flowdeck"
    r = run_cli("image", "build", "--base", "no-such/base:1", "--tag", "x:1")
    assert r.returncode == 1 and "base image 'no-such/base:1' is not on this Docker engine" in r.stderr
    assert "Traceback" not in r.stderr


# -- runs in containers ------------------------------------------------------------------------------

def test_docker_run_end_to_end_with_logs_and_coerced_parameters(dworld):
    w = dworld
    dep = w.deployment("dock", "hello")
    agent = w.agent()
    run = w.client.create_flow_run_from_deployment(deployment_id=dep.id,
                                                   parameters={"name": "docker", "count": "3", "ratio": "2"})
    done = wait_state(w.client, run.id, {"COMPLETED", "FAILED", "CRASHED"}, timeout=90)
    assert done.state.type == "COMPLETED", done.state.message
    logs = run_cli("flow-run", "logs", run.id, env={"FLOWDECK_API_URL": w.server.address}).stdout
    assert "hello docker x3 ratio=2.0 types=int,float in a container: True" in logs, logs
    agent.wait_for(f"started flow run {done.name} ({run.id}) in container flowdeck-{run.id}")
    wait_until("the run's container to be removed", lambda: not run_containers(w.engine, run.id), 30)
    # stream_output: the container's output shows in the agent's own output too.
    assert "hello docker x3" in agent.log()

    # A flow kept in a file the container cannot see: the run fails and says how to fix it.
    blind = w.deployment("blind", "hello", volumes=[])
    run = w.client.create_flow_run_from_deployment(deployment_id=blind.id)
    failed = wait_state(w.client, run.id, {"FAILED", "COMPLETED", "CRASHED"}, timeout=30)
    assert failed.state.type == "FAILED"
    assert f"the flow's script is {w.tmp / 'flows.py'} on the agent's machine, which a container does not see" \
        in failed.state.message
    assert f"volumes=['{w.tmp}:{w.tmp}:ro']" in failed.state.message
    # An image that is not there (nothing is pulled).
    missing = w.deployment("missing", "hello", image="local/no-such-image:1")
    run = w.client.create_flow_run_from_deployment(deployment_id=missing.id)
    failed = wait_state(w.client, run.id, {"FAILED", "COMPLETED", "CRASHED"}, timeout=30)
    assert failed.state.type == "FAILED" and "image 'local/no-such-image:1' is not on this Docker engine" \
        in failed.state.message
    assert "Traceback" not in agent.log()


def test_flow_in_local_storage_runs_with_a_volume_and_fails_clearly_without(dworld):
    w = dworld
    store = w.tmp / "store"
    (w.tmp / "deploy.py").write_text(textwrap.dedent(f"""
        from flowdeck.blocks.storage import LocalStorageBlock
        from flowdeck.deployments import DeploymentSpec
        from flowdeck.flow_runners import DockerFlowRunner

        for name, volumes in (("seen", [{str(store)!r} + ":" + {str(store)!r} + ":ro"]), ("unseen", [])):
            DeploymentSpec(name=name, flow_location="./flows.py", flow_name="hello", parameters={{"name": name}},
                           flow_storage=LocalStorageBlock(path={str(store)!r}),
                           flow_runner=DockerFlowRunner(image={w.image!r}, volumes=volumes, labels={SESSION_LABELS!r}))
    """))
    env = {"FLOWDECK_API_URL": w.server.address}
    r = run_cli("deployment", "create", str(w.tmp / "deploy.py"), env=env, cwd=w.tmp)
    assert r.returncode == 0 and "using File Storage" in r.stdout, r.stdout + r.stderr
    w.agent()
    seen = w.client.create_flow_run_from_deployment(deployment_name="hello/seen")
    unseen = w.client.create_flow_run_from_deployment(deployment_name="hello/unseen")
    done = wait_state(w.client, seen.id, {"COMPLETED", "FAILED", "CRASHED"}, timeout=90)
    assert done.state.type == "COMPLETED", done.state.message
    assert "hello seen x1" in run_cli("flow-run", "logs", seen.id, env=env).stdout
    failed = wait_state(w.client, unseen.id, {"COMPLETED", "FAILED", "CRASHED"}, timeout=30)
    assert failed.state.type == "FAILED"
    assert f"the flow's local storage is {store} on the agent's machine, which a container does not see" \
        in failed.state.message
    wait_until("the run's container to be removed", lambda: not run_containers(w.engine, seen.id), 30)


def test_cancel_stops_the_container(dworld):
    w = dworld
    dep = w.deployment("sleepy", "sleeper")
    agent = w.agent()
    run = w.client.create_flow_run_from_deployment(deployment_id=dep.id)
    running = wait_state(w.client, run.id, "RUNNING", timeout=90)
    (container,) = run_containers(w.engine, run.id)
    labels = container.labels
    assert labels["io.flowdeck.agent-name"] == "dock" and labels["io.flowdeck.agent-id"] == running.lease.agent_id
    assert labels["io.flowdeck.fencing-token"] == str(running.lease.fencing_token)
    assert container.status == "running"
    r = run_cli("flow-run", "cancel", run.id, env={"FLOWDECK_API_URL": w.server.address})
    assert r.returncode == 0, r.stdout + r.stderr
    cancelled = wait_state(w.client, run.id, "CANCELLED", timeout=30)
    assert "stopped the flow's process" in cancelled.state.message
    wait_until("the cancelled run's container to be removed", lambda: not run_containers(w.engine, run.id), 30)

    # A flow that ignores SIGTERM is killed after the agent's cancel grace (3 s here).
    stubborn = w.client.create_flow_run_from_deployment(deployment_id=w.deployment("stubborn", "stubborn").id)
    wait_state(w.client, stubborn.id, "RUNNING", timeout=90)
    wait_until("the flow to ignore SIGTERM", lambda: "ignoring SIGTERM" in run_cli(
        "flow-run", "logs", stubborn.id, env={"FLOWDECK_API_URL": w.server.address}).stdout, 30)
    t0 = time.monotonic()
    w.client.cancel_flow_run(stubborn.id)
    wait_state(w.client, stubborn.id, "CANCELLED", timeout=30)
    assert time.monotonic() - t0 >= 2.5  # it outlived the SIGTERM until the SIGKILL
    wait_until("the killed run's container to be removed", lambda: not run_containers(w.engine, stubborn.id), 30)
    assert "Traceback" not in agent.log()


def test_oom_kill_and_silent_exit_crash_the_run_with_the_reason(dworld, base_image):
    w = dworld
    hungry = w.deployment("hungry", "hog", mem_limit="200m")
    # The base image has python3 but no flowdeck: the process exits 1 without a report.
    bare = w.deployment("bare", "hello", image=base_image)
    w.agent()
    runs = [w.client.create_flow_run_from_deployment(deployment_id=d.id) for d in (hungry, bare)]
    oom, bare = (wait_state(w.client, r.id, {"CRASHED", "COMPLETED", "FAILED"}, timeout=90) for r in runs)
    assert oom.state.type == "CRASHED", oom.state.message
    assert "killed: out of memory (exit 137)" in oom.state.message
    assert bare.state.type == "CRASHED", bare.state.message
    assert bare.state.message.startswith("the flow's container exited with code 1 without reporting a final state: "
                                         "/usr/bin/python3: Error while finding module specification for "
                                         "'flowdeck.agent.run_flow' (ModuleNotFoundError")
    for run in runs:
        wait_until("the crashed runs' containers to be removed", lambda: not run_containers(w.engine, run.id), 30)


def test_kill_9_agent_orphans_stop_themselves_or_are_removed_by_the_restarted_agent(dworld):
    """Two runs in containers, then kill -9 of their agent: both runs become
    CRASHED within the TTL plus a margin. One container checks its lease every
    TTL and stops itself (exit 3); the other checks too rarely to notice and
    is stopped and removed by the agent started again with the same name,
    which also removes the first one's exited container."""
    w = dworld
    watching = w.deployment("watching", "sleeper")
    blind = w.deployment("blind", "sleeper", env={"FLOWDECK_LEASE_CHECK_SECONDS": "600"})
    doomed = w.agent("doomed")
    runs = [w.client.create_flow_run_from_deployment(deployment_id=d.id) for d in (watching, blind)]
    for run in runs:
        wait_state(w.client, run.id, "RUNNING", timeout=90)
    t0 = time.monotonic()
    doomed.proc.kill()
    doomed.proc.wait()
    for run in runs:
        crashed = wait_state(w.client, run.id, "CRASHED", timeout=TTL + 10)
        assert "stopped heartbeating" in crashed.state.message
    assert time.monotonic() - t0 < TTL + 8

    def exited(run_id):
        (c,) = run_containers(w.engine, run_id)
        return c if c.status == "exited" else None

    stopped = wait_until("the watching container to stop itself", lambda: exited(runs[0].id), 2 * TTL + 20)
    assert stopped.attrs["State"]["ExitCode"] == 3
    assert "the lease is gone (the run is CRASHED)" in stopped.logs().decode()
    (still,) = run_containers(w.engine, runs[1].id)
    assert still.status == "running"

    again = w.agent("doomed", FLOWDECK_AGENT_DOCKER_SWEEP_SECONDS="1")
    for run in runs:
        wait_until("the orphan containers to be removed", lambda: not run_containers(w.engine, run.id), 30)
    assert again.log().count("removed orphan container") == 2
    assert {r.state.type for r in (w.client.get_flow_run(run.id) for run in runs)} == {"CRASHED"}


S3_FLOW = textwrap.dedent("""
    from flowdeck import flow

    @flow
    def greet(name: str = "world"):
        print(f"greetings {name}, from a flow kept in S3")
""")


def test_s3_stored_flow_runs_in_a_container(dworld, moto_endpoint):
    """The flow's code is only in S3 (moto on loopback, reached with host
    networking); the S3 keys reach the container in its environment from the
    lease, not through the agent's own environment, and never in a log."""
    w = dworld
    bucket = f"flows-{time.time_ns()}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    project = w.tmp / "project"
    project.mkdir()
    (project / "greet.py").write_text(S3_FLOW)
    (project / "deploy.py").write_text(textwrap.dedent(f"""
        from flowdeck.blocks.storage import S3StorageBlock
        from flowdeck.deployments import DeploymentSpec
        from flowdeck.flow_runners import DockerFlowRunner

        DeploymentSpec(name="far", flow_location="./greet.py", flow_name="greet", parameters={{"name": "far"}},
                       flow_storage=S3StorageBlock(bucket={bucket!r}, endpoint_url={moto_endpoint!r},
                                                   region_name="us-east-1", aws_access_key_id={KEY_ID!r},
                                                   aws_secret_access_key={SECRET!r}),
                       flow_runner=DockerFlowRunner(image={w.image!r}, labels={SESSION_LABELS!r}))
    """))
    env = {"FLOWDECK_API_URL": w.server.address}
    r = run_cli("deployment", "create", str(project / "deploy.py"), env=env, cwd=project)
    assert r.returncode == 0 and "using S3 Storage" in r.stdout, r.stdout + r.stderr
    (project / "greet.py").unlink()
    agent = w.agent()
    run = w.client.create_flow_run_from_deployment(deployment_name="greet/far")
    done = wait_state(w.client, run.id, {"COMPLETED", "FAILED", "CRASHED"}, timeout=90)
    assert done.state.type == "COMPLETED", done.state.message
    logs = run_cli("flow-run", "logs", run.id, env=env).stdout
    assert "greetings far, from a flow kept in S3" in logs
    wait_until("the run's container to be removed", lambda: not run_containers(w.engine, run.id), 30)
    agent.stop()
    for text in (agent.log(), logs, json.dumps(done.model_dump(mode="json"))):
        assert SECRET not in text and KEY_ID not in text
