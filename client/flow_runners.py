"""Flow runners: how an agent runs a deployment's flow runs.

    from flowdeck.flow_runners import SubprocessFlowRunner
    DeploymentSpec(flow=etl, name="nightly",
                   flow_runner=SubprocessFlowRunner(virtualenv="/opt/venvs/etl", env={"TZ": "UTC"}))

Each runner is a pydantic object with a `type`, its `config` (a plain dict) and
`to_settings()` giving the {type, config} a deployment stores. Every run gets a
fresh process that loads the flow from the deployment's flow_data, validates
the parameters and reports through the API with its lease token.

* `UniversalFlowRunner` (type "universal", the agent's default): the agent's
  own Python interpreter, with `env` added to the environment.
* `SubprocessFlowRunner` (type "subprocess"): a given Python executable or
  virtualenv, with `env`; `stream_output=False` keeps the flow's output out of
  the agent's terminal (it is still captured into the run's logs).
* `DockerFlowRunner` (type "docker"): a fresh container of `image` per run,
  started through the Docker Engine API by the agent (see
  `flowdeck.agent.docker_runner`); the image needs flowdeck installed
  (`flowdeck image build`). Nothing is pulled unless `pull` says so.
* `InProcessFlowRunner` (type "in-process"): FOR BENCHMARKS AND TESTS ONLY. It
  runs the flow on a thread inside the agent process: no isolation, no
  cancellation by signal, and a crashing flow takes the agent with it.

This module imports no grpc.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flowdeck.models import FlowRunnerSettings

__all__ = [
    "FlowRunner",
    "UniversalFlowRunner",
    "SubprocessFlowRunner",
    "DockerFlowRunner",
    "InProcessFlowRunner",
    "FlowRunnerSettings",
    "RUNNER_TYPES",
    "runner_from_settings",
]


class FlowRunner(BaseModel):
    """Base of the runner settings objects."""

    model_config = ConfigDict(extra="forbid")

    typename: ClassVar[str] = ""
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("env must be a mapping of names to values")
        return {str(k): str(v) for k, v in value.items()}

    @property
    def config(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"type"})

    def to_settings(self) -> FlowRunnerSettings:
        return FlowRunnerSettings(type=self.type, config=self.config)


class UniversalFlowRunner(FlowRunner):
    """Runs the flow in a fresh process of the agent's own interpreter."""

    typename: ClassVar[str] = "universal"
    type: Literal["universal"] = "universal"


class SubprocessFlowRunner(FlowRunner):
    """Runs the flow in a fresh process of a chosen Python (an executable, or a
    virtualenv's), which must have flowdeck installed."""

    typename: ClassVar[str] = "subprocess"
    type: Literal["subprocess"] = "subprocess"
    stream_output: bool = True
    # A python executable; or a virtualenv directory (its bin/python is used).
    python: str | None = None
    virtualenv: str | None = None
    # Working directory of the flow process (default: the agent's).
    working_dir: str | None = None

    @field_validator("python", "virtualenv", "working_dir", mode="before")
    @classmethod
    def _paths(cls, value):
        if value is None or value == "":
            return None
        return str(value) if isinstance(value, (str, os.PathLike)) else value

    def python_executable(self, default: str) -> str:
        if self.python:
            return self.python
        if self.virtualenv:
            venv = Path(self.virtualenv).expanduser()
            for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
                if candidate.exists():
                    return str(candidate)
            return str(venv / "bin" / "python")
        return default


_SIZE = re.compile(r"^\d+(\.\d+)?[bkmg]?$", re.IGNORECASE)


class DockerFlowRunner(FlowRunner):
    """Runs each flow run in a fresh container of `image` (which must have
    flowdeck installed: `flowdeck image build`). `volumes` are "HOST:CONTAINER"
    or "HOST:CONTAINER:ro"; a flow kept in a local file or local storage needs
    one that mounts its folder at the same path. `mem_limit` ("512m", or bytes)
    and `cpus` cap the container; `auto_remove=False` keeps it after the run
    for inspection. `pull`: "never" (the default: the image must be there),
    "missing" or "always"."""

    typename: ClassVar[str] = "docker"
    type: Literal["docker"] = "docker"
    image: str
    volumes: list[str] = Field(default_factory=list)
    network_mode: str = "host"
    mem_limit: str | int | None = None
    cpus: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    auto_remove: bool = True
    stream_output: bool = True
    pull: Literal["never", "missing", "always"] = "never"

    @field_validator("image", "network_mode")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        for volume in value:
            parts = volume.split(":")
            if len(parts) not in (2, 3) or not all(parts[:2]) or not parts[1].startswith("/") \
                    or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ValueError(f"{volume!r} is not HOST:CONTAINER or HOST:CONTAINER:ro (CONTAINER absolute)")
        return value

    @field_validator("mem_limit")
    @classmethod
    def _mem_limit(cls, value):
        if isinstance(value, str) and not _SIZE.match(value.strip()):
            raise ValueError(f"{value!r} is not a size such as 512m, 2g or a number of bytes")
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be more than 0 bytes")
        return value.strip() if isinstance(value, str) else value

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value):
        if value is not None and value <= 0:
            raise ValueError("must be more than 0")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _label_strings(cls, value):
        return {str(k): str(v) for k, v in (value or {}).items()} if isinstance(value, dict) else value


class InProcessFlowRunner(FlowRunner):
    """BENCHMARKS/TESTS ONLY: runs the flow on a thread inside the agent."""

    typename: ClassVar[str] = "in-process"
    type: Literal["in-process"] = "in-process"


RUNNERS: dict[str, type[FlowRunner]] = {
    cls.typename: cls for cls in (UniversalFlowRunner, SubprocessFlowRunner, DockerFlowRunner, InProcessFlowRunner)
}
RUNNER_TYPES = tuple(RUNNERS)


def runner_from_settings(settings: FlowRunnerSettings | dict | None) -> FlowRunner:
    """The runner object for stored {type, config} settings (empty type: universal)."""
    if settings is None:
        return UniversalFlowRunner()
    if isinstance(settings, dict):
        settings = FlowRunnerSettings(type=settings.get("type") or "universal", config=settings.get("config") or {})
    kind = settings.type or "universal"
    cls = RUNNERS.get(kind)
    if cls is None:
        raise ValueError(f"unknown flow runner type {kind!r}; known: {', '.join(RUNNER_TYPES)}")
    config = {k: v for k, v in (settings.config or {}).items() if k != "type"}
    return cls(**config)
