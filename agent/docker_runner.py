"""Flow runs in Docker containers (`DockerFlowRunner`, type "docker").

Each leased run gets a fresh container of the runner's image, started through
the Docker Engine API (the `docker` package; DOCKER_HOST is honoured, so
podman's Docker-compatible socket works too). The container runs
`python3 -m flowdeck.agent.run_flow` like the other runners; what it needs
comes as environment variables, set on this one container and never written
to an image or a log: the API address, the run id and the lease's fencing
token, the agent's API key and TLS settings when it has them, the storage
config of the lease only when the run's flow data needs one, and how often to
check that the lease is still its own (`flowdeck.agent.lease_watch`).

Containers carry labels (LABEL_*): the flow run, the fencing token, the agent,
the server's address;
`flowdeck.agent.docker_sweep` finds them again. Docker's own init is PID 1, so
a stop's SIGTERM reaches the flow process.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from flowdeck.agent.runners import RunStartError
from flowdeck.flow_runners import DockerFlowRunner

log = logging.getLogger("flowdeck.agent")

LABEL_RUN = "io.flowdeck.flow-run-id"
LABEL_TOKEN = "io.flowdeck.fencing-token"
LABEL_AGENT = "io.flowdeck.agent-id"
LABEL_AGENT_NAME = "io.flowdeck.agent-name"
LABEL_AUTO_REMOVE = "io.flowdeck.auto-remove"
# The server's address as the agent knows it: a sweep judges only containers of its own server.
LABEL_API = "io.flowdeck.api-url"
# Passed through to the container when the agent has them (the TLS ones are
# file paths: the container needs a volume that shows them).
PASSED_ENV = ("FLOWDECK_API_KEY", "FLOWDECK_API_TLS_CA", "FLOWDECK_API_TLS_CERT", "FLOWDECK_API_TLS_KEY",
              "FLOWDECK_API_TLS_SERVER_NAME")
TLS_FILES = ("FLOWDECK_API_TLS_CA", "FLOWDECK_API_TLS_CERT", "FLOWDECK_API_TLS_KEY")
COMMAND = ["python3", "-m", "flowdeck.agent.run_flow"]


class ContainerStartError(RunStartError):
    """The run's container could not be made or started; str() says why."""


_engines: dict[int, object] = {}
_engines_lock = threading.Lock()


def engine(pool_size: int = 32):
    """The process's Docker Engine client (one per pool size), or ContainerStartError."""
    with _engines_lock:
        client = _engines.get(pool_size)
        if client is not None:
            return client
        try:
            import docker
        except ImportError:
            raise ContainerStartError("the docker runner needs the `docker` package in the agent's Python: "
                                      "pip install 'flowdeck[docker]'") from None
        try:
            client = docker.from_env(timeout=30, max_pool_size=pool_size)
            client.ping()
        except Exception as e:  # noqa: BLE001 - no daemon, no socket, no permission
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise ContainerStartError(f"no Docker Engine answers at {where}: {_one_line(e)}") from None
        _engines[pool_size] = client
        return client


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "explanation", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- what the container must see ------------------------------------------------------

def _flow_data_json(leased) -> dict:
    if leased.flow_data.encoding not in ("file", "blockstorage"):
        return {}
    try:
        data = json.loads(leased.flow_data.blob)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _local_block_config(leased) -> dict | None:
    """The settings of the local storage block the flow is kept in (None: not in one)."""
    data = _flow_data_json(leased)
    if leased.flow_data.encoding != "blockstorage" or (data.get("block_type") or "local") != "local":
        return None
    from flowdeck.core.structs import struct_dict

    return data.get("block_config") or (struct_dict(leased.storage_config) if leased.storage_type else {})


def host_paths_needed(leased, agent_env: dict[str, str]) -> list[tuple[str, str]]:
    """(what, path on this machine) the flow process reads from local disk:
    a flow kept as a file or in local storage, and the API's TLS files."""
    needed = []
    script = _flow_data_json(leased).get("path") if leased.flow_data.encoding == "file" else None
    local = _local_block_config(leased)
    if script:
        needed.append(("the flow's script", script))
    elif local is not None:
        from flowdeck.blocks.storage import LocalStorageBlock

        needed.append(("the flow's local storage", str(LocalStorageBlock(path=local.get("path")).folder())))
    for name in TLS_FILES:
        if agent_env.get(name):
            needed.append((name, agent_env[name]))
    return needed


def check_volumes(runner: DockerFlowRunner, needed: list[tuple[str, str]]) -> None:
    """Every needed path must be inside a volume mounted at the same path."""
    mounts = []
    for volume in runner.volumes:
        host, container = volume.split(":")[:2]
        mounts.append((Path(host).expanduser().resolve(), container))
    for what, raw in needed:
        path = Path(raw).expanduser().resolve()
        inside = [(host, container) for host, container in mounts if path == host or host in path.parents]
        if any(str(host) == container for host, container in inside):
            continue
        folder = path.parent if what == "the flow's script" else path
        if inside:
            host, container = inside[0]
            raise ContainerStartError(
                f"{what} is {path} on the agent's machine; the volume {host}:{container} shows it at another "
                f"path: mount it at the same path, e.g. volumes=['{folder}:{folder}:ro']")
        raise ContainerStartError(
            f"{what} is {path} on the agent's machine, which a container does not see: give the "
            f"DockerFlowRunner a volume, e.g. volumes=['{folder}:{folder}:ro'] (or keep the flow in S3 or "
            f"server storage)")


# -- the container ------------------------------------------------------------------------

def container_env(runner: DockerFlowRunner, leased, *, run_id: str, token: int, api_url: str,
                  lease_check_seconds: float, agent_env: dict[str, str]) -> dict[str, str]:
    """The container's whole environment: the runner's `env`, then what the
    flow process needs (which the runner's `env` cannot override)."""
    env = {"FLOWDECK_LEASE_CHECK_SECONDS": f"{lease_check_seconds:g}"}
    env.update(runner.env)
    env.update({name: agent_env[name] for name in PASSED_ENV if agent_env.get(name)})
    if leased.storage_type:
        from flowdeck.blocks.storage import LEASED_CONFIG_ENV
        from flowdeck.core.structs import struct_dict

        env[LEASED_CONFIG_ENV] = json.dumps({"type": leased.storage_type,
                                             "config": struct_dict(leased.storage_config)})
    local = _local_block_config(leased)
    if local is not None and not local.get("path") and agent_env.get("FLOWDECK_HOME"):
        env.setdefault("FLOWDECK_HOME", agent_env["FLOWDECK_HOME"])  # the default local storage is under it
    env.update(FLOWDECK_API_URL=api_url, FLOWDECK_FLOW_RUN_ID=run_id, FLOWDECK_FENCING_TOKEN=str(token),
               PYTHONUNBUFFERED="1")
    return env


def _image(client, runner: DockerFlowRunner) -> None:
    import docker.errors

    if runner.pull == "always":
        _pull(client, runner.image)
        return
    try:
        client.images.get(runner.image)
    except docker.errors.ImageNotFound:
        if runner.pull == "missing":
            _pull(client, runner.image)
            return
        raise ContainerStartError(
            f"image {runner.image!r} is not on this Docker engine and the runner's pull is 'never': "
            f"build it here (flowdeck image build --base IMAGE --tag {runner.image}) or set pull='missing'"
        ) from None


def _pull(client, image: str) -> None:
    try:
        client.images.pull(image)
    except Exception as e:  # noqa: BLE001
        raise ContainerStartError(f"cannot pull image {image!r}: {_one_line(e)}") from None


def start_container(runner: DockerFlowRunner, leased, *, run_id: str, token: int, api_url: str,
                    agent_id: str, agent_name: str, lease_check_seconds: float,
                    pool_size: int = 32, extra_env: dict[str, str] | None = None) -> "ContainerHandle":
    """Create and start the run's container; ContainerStartError says why not."""
    agent_env = dict(os.environ)
    check_volumes(runner, host_paths_needed(leased, agent_env))
    client = engine(pool_size)
    _image(client, runner)
    labels = {**runner.labels, LABEL_RUN: run_id, LABEL_TOKEN: str(token), LABEL_AGENT: agent_id,
              LABEL_AGENT_NAME: agent_name, LABEL_API: api_url, LABEL_AUTO_REMOVE: "true" if runner.auto_remove else "false"}
    options = {}
    if runner.mem_limit is not None:
        # The same limit for memory and swap: a flow over it is OOM-killed, not swapped.
        options.update(mem_limit=runner.mem_limit, memswap_limit=runner.mem_limit)
    if runner.cpus is not None:
        options["nano_cpus"] = int(runner.cpus * 1e9)
    env = container_env(runner, leased, run_id=run_id, token=token, api_url=api_url,
                        lease_check_seconds=lease_check_seconds, agent_env=agent_env)
    env.update(extra_env or {})
    try:
        container = client.containers.create(
            runner.image, COMMAND, name=f"flowdeck-{run_id}-{token}", environment=env, labels=labels,
            network_mode=runner.network_mode, volumes=list(runner.volumes), init=True, detach=True, **options)
    except Exception as e:  # noqa: BLE001 - the engine's reason, in one line
        raise ContainerStartError(f"cannot create a container of {runner.image!r}: {_one_line(e)}") from None
    handle = ContainerHandle(container, runner)
    try:
        container.start()
    except Exception as e:  # noqa: BLE001
        handle.release(force=True)
        raise ContainerStartError(f"cannot start a container of {runner.image!r}: {_one_line(e)}") from None
    if runner.stream_output:
        threading.Thread(target=handle.copy_output, name=f"output-{container.short_id}", daemon=True).start()
    return handle


class ContainerHandle:
    """One run's container: what the agent waits on, stops and removes."""

    def __init__(self, container, runner: DockerFlowRunner):
        self.container = container
        self.runner = runner

    @property
    def where(self) -> str:
        return f"container {self.container.name} ({self.container.short_id})"

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the container stopped (None: gone, or not within `timeout`)."""
        import docker.errors
        import requests.exceptions

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.1, deadline - time.monotonic())
            try:
                return int(self.container.wait(timeout=left)["StatusCode"])
            except docker.errors.NotFound:
                return None
            except requests.exceptions.ReadTimeout:
                return None
            except (docker.errors.APIError, requests.exceptions.ConnectionError) as e:
                # The engine restarted or dropped the connection: ask again.
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                log.warning("waiting for %s: %s; asking again", self.where, _one_line(e))
                time.sleep(1.0)

    def stop(self, grace: float) -> int | None:
        """SIGTERM to the flow process, SIGKILL after `grace` seconds."""
        import docker.errors

        try:
            self.container.stop(timeout=max(0, int(round(grace))))
        except docker.errors.NotFound:
            return None
        except Exception as e:  # noqa: BLE001 - the wait in the run's thread still ends it
            log.warning("stopping %s: %s", self.where, _one_line(e))
        return self.wait(10)

    def copy_output(self) -> None:
        """stream_output: the container's stdout and stderr go to the agent's stdout."""
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        except Exception:  # noqa: BLE001 - the container went away: nothing more to copy
            pass

    def exit_message(self, rc: int | None) -> str:
        state = {}
        try:
            self.container.reload()
            state = self.container.attrs.get("State") or {}
        except Exception:  # noqa: BLE001 - removed meanwhile: the exit code is all there is
            pass
        if state.get("OOMKilled"):
            return (f"the flow's container was killed: out of memory (exit {rc}); "
                    f"mem_limit {self.runner.mem_limit}")
        if rc is None:
            return f"the flow's {self.where} disappeared before it reported a final state"
        last = self._last_output_line()
        return (f"the flow's container exited with code {rc} without reporting a final state"
                + (f": {last}" if last else ""))

    def _last_output_line(self) -> str:
        try:
            tail = self.container.logs(tail=20).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    def release(self, force: bool = False) -> None:
        """Remove the container unless the runner keeps it (auto_remove=False)."""
        if not (self.runner.auto_remove or force):
            return
        try:
            self.container.remove(force=True)
        except Exception as e:  # noqa: BLE001 - the sweep gets it later
            if "No such container" not in str(e):
                log.warning("could not remove %s: %s", self.where, _one_line(e))
