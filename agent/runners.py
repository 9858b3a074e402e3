"""Starting flow runs: each leased run gets a fresh process
(`python -m flowdeck.agent.run_flow`) that loads the flow from flow_data and
reports through the API with the lease's fencing token.

* universal: the agent's own interpreter; config {env}.
* subprocess: a chosen python / virtualenv; config {env, stream_output, python,
  virtualenv, working_dir}.
* docker: a fresh container per run (`flowdeck.agent.docker_runner`).
* in-process: FOR BENCHMARKS ONLY - the flow runs on a thread in the agent.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from flowdeck.flow_runners import (DockerFlowRunner, FlowRunner, InProcessFlowRunner, SubprocessFlowRunner,
                                   runner_from_settings)

log = logging.getLogger("flowdeck.agent")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the flow process is killed when the agent thread that started it
    dies (kill -9 of the agent must not leave flows running unsupervised)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


class RunStartError(Exception):
    """The run's flow process could not be started; str() says why."""


class ProcessHandle:
    """A flow process for one leased run."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def where(self) -> str:
        return f"process {self.proc.pid}"

    def exit_message(self, rc: int | None) -> str:
        return f"the flow process exited with code {rc} without reporting a final state"

    def release(self) -> None:
        """Nothing to clean up after a process."""

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def poll(self) -> int | None:
        return self.proc.poll()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float) -> int | None:
        """Terminate, then kill after `grace` seconds."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self._signal_group(signal.SIGTERM)
        rc = self.wait(grace)
        if rc is None:
            self._signal_group(signal.SIGKILL)
            rc = self.wait(10)
        return rc


def channel(address: str, max_backoff: float = 2.0):
    """A channel that tries to reconnect at least every `max_backoff` seconds
    (gRPC's default backoff grows to two minutes after a server outage).
    TLS and the API key come from FLOWDECK_API_TLS_* and FLOWDECK_API_KEY."""
    from flowdeck.channels import make_channel

    return make_channel(address, options=[
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.enable_retries", 0),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", int(max(0.1, max_backoff) * 1000)),
    ])


def command_for(runner: FlowRunner, *, run_id: str, token: int, api_url: str) -> list[str]:
    python = sys.executable
    if isinstance(runner, SubprocessFlowRunner):
        python = runner.python_executable(sys.executable)
    return [python, "-m", "flowdeck.agent.run_flow", "--flow-run-id", run_id,
            "--fencing-token", str(token), "--api-url", api_url, "--leased-run-stdin"]


def start_process(runner: FlowRunner, leased_bytes: bytes, *, run_id: str, token: int, api_url: str,
                  extra_env: dict[str, str] | None = None) -> ProcessHandle:
    """Start the flow process; the LeasedRun (with any storage secrets) goes
    to it over a pipe, never through argv or the environment."""
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update(runner.env)
    env["FLOWDECK_API_URL"] = api_url
    env["FLOWDECK_FLOW_RUN_ID"] = run_id
    env["PYTHONUNBUFFERED"] = "1"
    quiet = isinstance(runner, SubprocessFlowRunner) and not runner.stream_output
    cwd = runner.working_dir if isinstance(runner, SubprocessFlowRunner) and runner.working_dir else None
    proc = subprocess.Popen(
        command_for(runner, run_id=run_id, token=token, api_url=api_url),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.DEVNULL if quiet else None,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    try:
        proc.stdin.write(leased_bytes)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return ProcessHandle(proc)


def start_run(runner: FlowRunner, leased, *, token: int, api_url: str, agent_id: str, agent_name: str,
              lease_ttl: float, pool_size: int, extra_env: dict[str, str] | None = None):
    """The run's flow process (a handle with where/wait/stop/exit_message/release),
    or RunStartError. `extra_env` goes to its environment (the trace context)."""
    run_id = leased.flow_run.id
    if isinstance(runner, DockerFlowRunner):
        from flowdeck.agent import docker_runner

        return docker_runner.start_container(runner, leased, run_id=run_id, token=token, api_url=api_url,
                                             agent_id=agent_id, agent_name=agent_name,
                                             lease_check_seconds=lease_ttl, pool_size=pool_size,
                                             extra_env=extra_env)
    return start_process(runner, leased.SerializeToString(), run_id=run_id, token=token, api_url=api_url,
                         extra_env=extra_env)


class InProcessRun:
    """BENCHMARKS ONLY: run the flow on a thread of the agent process."""

    _flows: dict[tuple, Any] = {}
    _lock = threading.Lock()

    def __init__(self, client, leased, token: int):
        self.client = client
        self.leased = leased
        self.token = token
        self.state = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from flowdeck.client._convert import flow_data_from_pb, flow_run_from_pb
        from flowdeck.engine import execute_flow_run
        from flowdeck.flow_data import load_flow

        leased = self.leased
        key = (leased.deployment.id, leased.flow_data.encoding, leased.flow_data.blob)
        with self._lock:
            flow = self._flows.get(key)
            if flow is None:
                flow = load_flow(flow_data_from_pb(leased.flow_data), client=self.client)
                self._flows[key] = flow
        flow_run = flow_run_from_pb(leased.flow_run)
        self.state = execute_flow_run(self.client, flow_run, flow, fencing_token=self.token)


def runner_for(settings_type: str, config: dict) -> FlowRunner:
    return runner_from_settings({"type": settings_type or "universal", "config": config or {}})


__all__ = ["ProcessHandle", "InProcessRun", "InProcessFlowRunner", "RunStartError", "start_process", "start_run",
           "runner_for", "command_for"]
