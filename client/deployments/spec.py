"""`DeploymentSpec`: what a deployment should be.

    DeploymentSpec(flow=hello_world, name="hello-world-daily")
    DeploymentSpec(flow_location="./flow.py", name="weekly", schedule={"interval": 604800})

Making a spec validates its fields. A spec made while a loader runs a spec
file (`flowdeck.deployments.load_specs`) is collected by that loader; it
knows where it was made ("deploy.py line 12") and reads a relative
`flow_location` from that file's folder.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from flowdeck.deployments.apply import create_deployments
from flowdeck.deployments.errors import SpecError, spec_label
from flowdeck.deployments.unresolved import Unresolved, find_unresolved
from flowdeck.flow_data import collect, display_path
from flowdeck.flows import Flow

DEFAULT_RUNNER = {"type": "universal", "config": {"env": {}}}

_DEPLOYMENTS_DIR = os.path.dirname(os.path.abspath(__file__))
# (source description, base folder) for specs made by a loader, not by a script.
_origin: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("flowdeck_spec_origin", default=None)


@contextlib.contextmanager
def made_at(source: str, base: str) -> Iterator[None]:
    """Specs made inside were made at `source` (e.g. "d.yaml document 2, line 6");
    their relative flow_location is read from `base`."""
    token = _origin.set((source, base))
    try:
        yield
    finally:
        _origin.reset(token)


def runner_settings(value: Any) -> dict[str, Any]:
    """{"type", "config"} from a flow runner object (`.type`/`.config` or
    `to_settings()`), a dict, a type name, or None (the default)."""
    if value is None:
        return json.loads(json.dumps(DEFAULT_RUNNER))
    if isinstance(value, str):
        return {"type": value, "config": {}}
    if isinstance(value, dict):
        extra = set(value) - {"type", "config"}
        if extra:
            raise ValueError(f"unknown key {sorted(extra)[0]!r} (expected type and config)")
        config = value.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError("config must be a mapping")
        return {"type": value.get("type") or "universal", "config": dict(config)}
    if hasattr(value, "to_settings"):
        value = value.to_settings()
        if isinstance(value, dict):
            return runner_settings(value)
    if hasattr(value, "type") and hasattr(value, "config"):
        config = value.config or {}
        if hasattr(config, "model_dump"):
            config = config.model_dump(mode="json")
        return {"type": str(value.type), "config": dict(config)}
    raise ValueError(f"expected a flow runner, a dict with type and config, or None; got {type(value).__name__}")


class DeploymentSpec(BaseModel):
    """What a deployment should be. Either `flow` or `flow_location` is
    required; `flow_location` is inferred from `flow`, `flow_name` from the
    flow. A relative `flow_location` is read from the folder of the file that
    makes the spec."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str
    flow: Any = None
    flow_location: str | None = None
    flow_name: str | None = None
    flow_runner: Any = None
    flow_storage: Any = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedule: Any = None
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    is_schedule_active: bool | None = None
    catchup: bool = False
    max_lateness: dt.timedelta | None = None

    _source: str = PrivateAttr(default="")
    _flow_variable: str | None = PrivateAttr(default=None)
    _location_inferred: bool = PrivateAttr(default=False)

    def __init__(self, **data: Any):
        origin = _origin.get()
        source, base = origin if origin is not None else _caller()
        label = data.get("name") if isinstance(data.get("name"), str) else None
        flow_variable = None
        if isinstance(data.get("flow"), Unresolved):
            flow_variable = data["flow"]._name
            if not data.get("flow_location"):
                raise SpecError(spec_label(label, source) + f": flow: name {flow_variable!r} is not defined "
                                "(import the flow, or give flow_location)")
            data = {**data, "flow": None}
        hit = find_unresolved(data)
        if hit:
            raise SpecError(spec_label(label, source) + f": {hit[0].lstrip('.')}: name {hit[1]!r} is not defined")
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SpecError(spec_label(label, source) + ": " + _first_error(e)) from None
        self._source = source
        self._flow_variable = flow_variable
        if self.flow_location:
            path = Path(self.flow_location).expanduser()
            if not path.is_absolute():
                path = Path(base) / path
            self.flow_location = os.path.normpath(str(path))
        elif self.flow is not None:
            self.flow_location = _source_file_of(self.flow)
            self._location_inferred = True
        else:
            raise SpecError(spec_label(label, source) + ": either flow or flow_location is required")
        if self.flow is not None:
            if self.flow_name and self.flow_name != self.flow.name:
                raise SpecError(spec_label(label, source) + f": flow_name: {self.flow_name!r} does not match "
                                f"the flow's name {self.flow.name!r}")
            self.flow_name = self.flow.name
        collect(self)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        if "/" in v:
            raise ValueError("must not contain '/'")
        return v

    @field_validator("flow")
    @classmethod
    def _check_flow(cls, v: Any) -> Any:
        if v is None or isinstance(v, Flow):
            return v
        if callable(v):
            raise ValueError(f"{getattr(v, '__name__', v)!r} is not a flow: decorate it with @flow")
        raise ValueError(f"expected a flow, got {type(v).__name__}")

    @field_validator("flow_location", mode="before")
    @classmethod
    def _check_location(cls, v: Any) -> Any:
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        return v

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, v: Any) -> Any:
        if v is None:
            return None
        from flowdeck.core.schedules import schedule_from_dict

        if hasattr(v, "to_proto") and hasattr(v, "to_dict"):
            return v
        return schedule_from_dict(v)

    @field_validator("flow_runner")
    @classmethod
    def _check_runner(cls, v: Any) -> Any:
        runner_settings(v)
        return v

    @field_validator("flow_storage")
    @classmethod
    def _check_storage(cls, v: Any) -> Any:
        if v is None or isinstance(v, (str, dict)):
            if isinstance(v, str) and not v.strip():
                raise ValueError("must not be empty")
            if isinstance(v, dict) and not (v.get("type") or v.get("block_type")):
                raise ValueError("a storage mapping needs a type")
            return v
        if hasattr(v, "write") and hasattr(v, "read"):
            return v
        raise ValueError(f"expected a storage block or a storage block id, got {type(v).__name__}")

    @field_validator("max_lateness")
    @classmethod
    def _check_lateness(cls, v: dt.timedelta | None) -> dt.timedelta | None:
        if v is not None and v <= dt.timedelta(0):
            raise ValueError("must be greater than zero")
        return v

    @property
    def source(self) -> str:
        """Where the spec was made, e.g. "deploy.py line 12"."""
        return self._source

    def label(self) -> str:
        return spec_label(self.name, self._source)

    def runner_settings(self) -> dict[str, Any]:
        return runner_settings(self.flow_runner)

    def create(self, client=None, *, progress: Callable[[object], None] | None = None):
        """Create or update this spec's deployment; returns (deployment, created).
        See `flowdeck.deployments.create_deployments`."""
        return create_deployments([self], client, progress=progress)[0]


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif err.get("type") == "missing":
        msg = "is required"
    msg = msg.removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _caller() -> tuple[str, str]:
    """(description, folder) of the code that makes a spec: the first frame
    outside flowdeck and pydantic."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        folder = os.path.dirname(os.path.abspath(filename))
        if folder != _DEPLOYMENTS_DIR and f"{os.sep}pydantic" not in filename:
            break
        frame = frame.f_back
    if frame is None or not os.path.isfile(frame.f_code.co_filename):
        return "", os.getcwd()
    filename = frame.f_code.co_filename
    return f"{display_path(filename)} line {frame.f_lineno}", os.path.dirname(os.path.abspath(filename))


def _source_file_of(flow: Flow) -> str | None:
    import inspect

    try:
        path = inspect.getsourcefile(flow.fn) or flow.fn.__code__.co_filename
    except TypeError:
        return None
    return os.path.abspath(path) if path and os.path.isfile(path) else None
