"""Deployment specifications: `DeploymentSpec`, spec files and creating deployments.

    from flowdeck.deployments import DeploymentSpec

    DeploymentSpec(flow=hello_world, name="hello-world-daily")
    DeploymentSpec(flow_location="./flow.py", name="weekly", schedule={"interval": 604800})

Constructing a spec registers it: loading a script collects every spec it
makes (`load_specs`). YAML files hold the same fields, one spec per document
(`---` between them). `create_deployments` validates every spec first (flows
loaded, parameters checked against the flow's signature, duplicate
flow/deployment names refused) and then creates or updates them all, undoing
what it did when the server refuses one.
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

from flowdeck.exceptions import FlowdeckError, InvalidArgumentError, NotFoundError
from flowdeck.flows import Flow, ParameterValidationError

DEFAULT_RUNNER = {"type": "universal", "config": {"env": {}}}
STORAGE_LABELS = {"local": "File Storage", "s3": "S3 Storage", "server": "Server Storage"}

_CLIENT_DIR = os.path.dirname(os.path.abspath(__file__))


class SpecError(InvalidArgumentError):
    """A deployment spec, or a spec file, is invalid."""


# -- registration ----------------------------------------------------------------------

_GLOBAL = object()
_registry: list["DeploymentSpec"] = []
_collector: contextvars.ContextVar[Any] = contextvars.ContextVar("flowdeck_spec_collector", default=_GLOBAL)
# (source description, base folder) for specs made by a loader, not by a script.
_origin: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("flowdeck_spec_origin", default=None)


@contextlib.contextmanager
def collecting(into: list | None) -> Iterator[list | None]:
    """Specs made inside go to `into` (None: dropped) instead of the registry."""
    token = _collector.set(into)
    try:
        yield into
    finally:
        _collector.reset(token)


def registered_specs() -> list["DeploymentSpec"]:
    """Specs made outside of any loader, in this process."""
    return list(_registry)


def clear_registry() -> None:
    _registry.clear()


def _register(spec: "DeploymentSpec") -> None:
    target = _collector.get()
    if target is _GLOBAL:
        _registry.append(spec)
    elif target is not None:
        target.append(spec)


# -- names a deployment script uses but never defines ------------------------------------

class Unresolved:
    """Stands for a name a spec script uses without defining it (the concept
    document's `flow=hello_world` next to `flow_location`). Any real use of it
    is a NameError."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def _fail(self, *a, **k):
        raise NameError(f"name {self._name!r} is not defined")

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        self._fail()

    __call__ = __getitem__ = __iter__ = __len__ = __bool__ = __add__ = __radd__ = _fail
    __setattr__ = _fail

    def __repr__(self) -> str:
        return f"<undefined name {self._name!r}>"


class LenientNamespace(dict):
    """Globals of a spec script: while it runs, an undefined name at module
    level gives an `Unresolved` instead of a NameError."""

    lenient = True

    def __missing__(self, key):
        import builtins

        if self.lenient and not hasattr(builtins, key) and not key.startswith("__"):
            return Unresolved(key)
        raise KeyError(key)


def _find_unresolved(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, Unresolved):
        return path, value._name
    if isinstance(value, dict):
        for k, v in value.items():
            hit = _find_unresolved(v, f"{path}.{k}")
            if hit:
                return hit
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = _find_unresolved(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


# -- runner and storage settings ------------------------------------------------------

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


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return json.loads(json.dumps(value, default=to_jsonable_python))


# -- the spec ---------------------------------------------------------------------------

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
                raise SpecError(_spec_label(label, source) + f": flow: name {flow_variable!r} is not defined "
                                "(import the flow, or give flow_location)")
            data = {**data, "flow": None}
        hit = _find_unresolved(data, "")
        if hit:
            raise SpecError(_spec_label(label, source) + f": {hit[0].lstrip('.')}: name {hit[1]!r} is not defined")
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SpecError(_spec_label(label, source) + ": " + _first_error(e)) from None
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
            raise SpecError(_spec_label(label, source) + ": either flow or flow_location is required")
        if self.flow is not None:
            if self.flow_name and self.flow_name != self.flow.name:
                raise SpecError(_spec_label(label, source) + f": flow_name: {self.flow_name!r} does not match "
                                f"the flow's name {self.flow.name!r}")
            self.flow_name = self.flow.name
        _register(self)

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
        return _spec_label(self.name, self._source)

    def runner_settings(self) -> dict[str, Any]:
        return runner_settings(self.flow_runner)

    def create(self, client=None, *, echo: Callable[[str], None] | None = None):
        """Create or update this spec's deployment; returns (deployment, created)."""
        return create_deployments([self], client, echo=echo)[0]


def _spec_label(name: str | None, source: str) -> str:
    what = f"deployment spec {name!r}" if name else "deployment spec"
    return f"{what} ({source})" if source else what


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
        if folder != _CLIENT_DIR and f"{os.sep}pydantic" not in filename:
            break
        frame = frame.f_back
    if frame is None or not os.path.isfile(frame.f_code.co_filename):
        return "", os.getcwd()
    filename = frame.f_code.co_filename
    from flowdeck.flow_data import display_path

    return f"{display_path(filename)} line {frame.f_lineno}", os.path.dirname(os.path.abspath(filename))


def _source_file_of(flow: Flow) -> str | None:
    import inspect

    try:
        path = inspect.getsourcefile(flow.fn) or flow.fn.__code__.co_filename
    except TypeError:
        return None
    return os.path.abspath(path) if path and os.path.isfile(path) else None


# -- spec files ----------------------------------------------------------------------------

def file_kind(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".py":
        return "python script"
    if suffix in (".yaml", ".yml"):
        return "yaml file"
    raise SpecError(f"{os.fspath(path)!r} is neither a Python script (.py) nor a YAML file (.yaml, .yml)")


def load_specs(path: str | os.PathLike) -> list[DeploymentSpec]:
    """Every spec a .py or .yaml file makes, in order."""
    from flowdeck.flow_data import display_path

    kind = file_kind(path)
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"file {display_path(p)!r} not found" if not p.exists()
                            else f"{display_path(p)!r} is not a file")
    try:
        text = p.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {display_path(p)!r}: {e.strerror}") from None
    if kind == "yaml file":
        specs = _load_yaml(text, p)
    else:
        specs = _load_python(text, p)
    if not specs:
        raise SpecError(f"no deployment specs found in {display_path(p)!r}")
    return specs


def _load_python(source: bytes, path: Path) -> list[DeploymentSpec]:
    from flowdeck.flow_data import FlowLoadError, exec_script

    specs: list[DeploymentSpec] = []
    namespace = LenientNamespace()
    try:
        exec_script(source, str(path.resolve()), module_name="__flowdeck_deployments__", namespace=namespace,
                    specs=specs)
    except FlowLoadError as e:
        raise SpecError(e.message) from None
    finally:
        namespace.lenient = False
    return specs


def _load_yaml(text: bytes, path: Path) -> list[DeploymentSpec]:
    import yaml

    from flowdeck.flow_data import display_path

    shown = display_path(path)
    docs: list[tuple[int, Any]] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            docs.append((node.start_mark.line + 1, loader.construct_document(node)))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = e.problem or e.context or "invalid YAML"
        raise SpecError(f"invalid YAML in {shown!r}{line}: {problem}") from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML in {shown!r}: {str(e).splitlines()[0]}") from None
    finally:
        loader.dispose()
    specs = []
    base = str(path.resolve().parent)
    for number, (line, data) in enumerate(docs, start=1):
        if data is None:
            continue
        source = f"{shown} document {number}, line {line}"
        if not isinstance(data, dict):
            raise SpecError(f"deployment spec ({source}): expected a mapping of fields, got {type(data).__name__}")
        if "flow" in data:
            raise SpecError(_spec_label(data.get("name"), source) + ": flow: YAML specs name the flow's script "
                            "with flow_location (and flow_name)")
        token = _origin.set((source, base))
        try:
            with collecting(specs):
                DeploymentSpec(**{str(k): v for k, v in data.items()})
        finally:
            _origin.reset(token)
    return specs


# -- resolving and creating ------------------------------------------------------------------

class _Plan:
    """A spec resolved: its flow, script and what the deployment will hold."""

    def __init__(self, spec: DeploymentSpec, flow: Flow, script: str, parameters: dict):
        self.spec = spec
        self.flow = flow
        self.script = script
        self.parameters = parameters
        self.flow_data = None
        self.storage_label = ""
        self.previous = None

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.spec.name}"

    def fields(self) -> dict[str, Any]:
        s = self.spec
        return dict(
            flow_name=self.flow.name,
            flow_data=self.flow_data,
            schedule=s.schedule,
            is_schedule_active=s.is_schedule_active,
            parameters=self.parameters,
            tags=list(s.tags),
            flow_runner=s.runner_settings(),
            description=s.description,
            catchup=s.catchup,
            max_lateness=s.max_lateness,
        )


class _Loads:
    """Scripts loaded during one create, each once."""

    def __init__(self):
        self.namespaces: dict[str, list[Flow]] = {}
        self.sources: dict[str, bytes] = {}

    def source(self, path: str, label: str) -> bytes:
        from flowdeck.flow_data import display_path

        if path not in self.sources:
            try:
                self.sources[path] = Path(path).read_bytes()
            except FileNotFoundError:
                raise SpecError(f"{label}: flow_location: {display_path(path)!r} not found") from None
            except OSError as e:
                raise SpecError(f"{label}: flow_location: cannot read {display_path(path)!r}: {e.strerror}") from None
        return self.sources[path]

    def flows(self, path: str, label: str) -> list[Flow]:
        from flowdeck.flow_data import FlowLoadError, exec_script, flows_in

        if path not in self.namespaces:
            source = self.source(path, label)
            try:
                self.namespaces[path] = flows_in(exec_script(source, path))
            except FlowLoadError as e:
                raise SpecError(f"{label}: flow_location: {e.message}") from None
        return self.namespaces[path]


def resolve(spec: DeploymentSpec, loads: _Loads | None = None) -> _Plan:
    """Find the spec's flow and validate its parameters."""
    from flowdeck.flow_data import display_path, pick_flow

    loads = loads or _Loads()
    label = spec.label()
    location = spec.flow_location
    if not location:
        raise SpecError(f"{label}: cannot tell which script defines flow {spec.flow.name!r} "
                        "(it was not loaded from a file); give flow_location")
    if spec.flow is not None and spec._location_inferred:
        flow = spec.flow
        loads.source(location, label)
    else:
        flows = loads.flows(location, label)
        wanted = spec.flow.name if spec.flow is not None else spec.flow_name
        try:
            flow = pick_flow(flows, wanted, display_path(location), function_name=spec._flow_variable)
        except FlowdeckError as e:
            raise SpecError(f"{label}: {e.message}") from None
    try:
        checked = flow.validate_parameters(dict(spec.parameters), require_all=False, apply_defaults=False)
    except ParameterValidationError as e:
        raise SpecError(f"{label}: parameters: {e.message}") from None
    try:
        parameters = _jsonable(checked)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{label}: parameters: cannot be stored as JSON: {e}") from None
    plan = _Plan(spec, flow, location, parameters)
    plan.source_bytes = loads.source(location, label)
    return plan


def prepare(specs: list[DeploymentSpec]) -> list[_Plan]:
    """Resolve every spec; refuse two specs for one flow/deployment name."""
    loads = _Loads()
    plans = [resolve(s, loads) for s in specs]
    seen: dict[str, _Plan] = {}
    for plan in plans:
        other = seen.get(plan.full_name)
        if other is not None:
            raise SpecError(f"deployment {plan.full_name!r} is specified twice: by {other.spec.source or 'a spec'} "
                            f"and by {plan.spec.source or 'another spec'}")
        seen[plan.full_name] = plan
    return plans


# -- storage -------------------------------------------------------------------------------------

class _Storage:
    """Where flow scripts go: a block object, its server id and how the
    FlowData names its config."""

    def __init__(self, block, block_type: str, block_id: str | None = None):
        self.block = block
        self.block_type = block_type or getattr(block, "block_type", "") or "local"
        self.block_id = block_id

    @property
    def label(self) -> str:
        return (STORAGE_LABELS.get(self.block_type) or getattr(self.block, "display_name", None)
                or f"{self.block_type} storage")

    def blob_config(self) -> dict | None:
        """What the FlowData keeps of the block's config: a local block's
        folder; other blocks' public settings (never secrets)."""
        if self.block_type == "local":
            return {"path": str(self.block.folder())}
        public = getattr(self.block, "public_config", None)
        return _jsonable(public()) if callable(public) else None

    def write(self, data: bytes, *, flow_name: str, filename: str) -> str:
        import inspect

        try:
            params = inspect.signature(self.block.write).parameters
        except (TypeError, ValueError):
            params = {}
        if "flow_name" in params and "filename" in params:
            return self.block.write(data, flow_name=flow_name, filename=filename)
        return self.block.write(data)


def default_storage(client) -> _Storage:
    """The server's default storage block, else local file storage (also when
    the server has no StorageService)."""
    import grpc

    from flowdeck import models
    from flowdeck.blocks.storage import LocalStorageBlock
    from flowdeck.flow_data import block_from_document
    from flowdeck.v1 import storage_service_pb2, storage_service_pb2_grpc

    stub = client.stub(storage_service_pb2_grpc, "StorageService")
    try:
        msg = stub.GetDefaultStorageBlock(storage_service_pb2.GetDefaultStorageBlockRequest(), timeout=client.timeout)
    except grpc.RpcError as e:
        code = e.code().name if callable(getattr(e, "code", None)) else ""
        if code in ("UNIMPLEMENTED", "NOT_FOUND"):
            return _Storage(LocalStorageBlock(), "local")
        from flowdeck.client import translate

        raise translate(e, client.address) from None
    block = models.storage_block_from_pb(msg)
    return _Storage(block_from_document(block.type, block.config, client), block.type, block.id)


def storage_for(value: Any, client, *, dry_run: bool = False) -> _Storage:
    """The storage a spec's flow_storage names (not None): a block instance,
    a YAML mapping {"type": ..., ...} or a block id. Resolved by
    `flowdeck.blocks.storage.resolve_flow_storage` (which registers blocks
    with the server); a dry run registers nothing."""
    from flowdeck.blocks import storage as blocks
    from flowdeck.flow_data import block_from_document

    resolver = getattr(blocks, "resolve_flow_storage", None)
    if isinstance(value, str) or not dry_run:
        if resolver is not None:
            block, block_id = resolver(value, client)
            return _Storage(block, getattr(block, "block_type", ""), block_id)
        if isinstance(value, str):
            raise SpecError(f"flow_storage: storage block {value!r} cannot be used: storage blocks on the "
                            "server are not supported by this flowdeck")
    if isinstance(value, dict):
        config = {k: v for k, v in value.items() if k not in ("type", "block_type")}
        block_type = value.get("type") or value.get("block_type")
        try:
            value = block_from_document(block_type, config, client)
        except ValueError as e:
            raise SpecError(f"flow_storage: {e}") from None
    block_type = getattr(value, "block_type", "") or "local"
    if not dry_run:
        if block_type != "local":
            raise SpecError(f"flow_storage: {block_type} storage blocks are not supported by this flowdeck")
        return _Storage(value, "local")
    return _Storage(value, block_type, _registered_id(client, value))


def _registered_id(client, block) -> str | None:
    """The id of a registered block equal to `block` (dry runs), if any."""
    lister = getattr(client, "list_storage_blocks", None)
    public = getattr(block, "public_config", None)
    if lister is None or not callable(public):
        return None
    try:
        want = {k: v for k, v in _jsonable(public()).items() if v is not None}
        for known in lister(limit=None):
            have = {k: v for k, v in known.config.items() if v not in (None, "********")}
            if known.type == block.block_type and all(have.get(k) == v for k, v in want.items()):
                return known.id
    except FlowdeckError:
        return None
    return None


def _store(plan: _Plan, storage: _Storage, *, write: bool) -> None:
    from flowdeck.blocks.storage import content_key
    from flowdeck.flow_data import blockstorage_flow_data

    data = plan.source_bytes
    if write:
        key = storage.write(data, flow_name=plan.flow.name, filename=os.path.basename(plan.script))
    else:
        key = content_key(data)
    plan.flow_data = blockstorage_flow_data(
        key=key, flow_name=plan.flow.name, filename=plan.script, block_id=storage.block_id,
        block_type=storage.block_type, block_config=storage.blob_config())
    plan.storage_label = storage.label


# -- comparing (dry run) -------------------------------------------------------------------------

def _normal_schedule(schedule: Any) -> dict | None:
    if not schedule:
        return None
    from flowdeck.core.schedules import schedule_from_dict, schedule_from_proto

    return schedule_from_proto(schedule_from_dict(schedule).to_proto()).to_dict()


def _normal(fields: dict[str, Any]) -> dict[str, Any]:
    fd = fields["flow_data"]
    try:
        blob = json.loads(fd.blob)
    except (ValueError, AttributeError):
        blob = getattr(fd, "blob", None)
    lateness = fields.get("max_lateness")
    if isinstance(lateness, dt.timedelta):
        lateness = lateness.total_seconds()
    runner = fields.get("flow_runner") or {}
    active = fields.get("is_schedule_active")
    return {
        "flow_data": (getattr(fd, "encoding", None), blob),
        "schedule": _normal_schedule(fields.get("schedule")),
        "is_schedule_active": True if active is None else bool(active),
        "parameters": _jsonable(_plain(fields.get("parameters") or {})),
        "tags": list(fields.get("tags") or []),
        "flow_runner": {"type": runner.get("type") or "universal", "config": _plain(runner.get("config") or {})},
        "description": fields.get("description") or "",
        "catchup": bool(fields.get("catchup")),
        "max_lateness": float(lateness) if lateness is not None else None,
    }


def _plain(value: Any) -> Any:
    """Numbers as the server gives them back (integral floats are ints)."""
    from flowdeck.core.structs import plain_numbers

    return plain_numbers(_jsonable(value))


def _existing_fields(dep) -> dict[str, Any]:
    return dict(
        flow_data=dep.flow_data, schedule=dep.schedule, is_schedule_active=dep.is_schedule_active,
        parameters=dep.parameters, tags=dep.tags, flow_runner=dep.flow_runner.model_dump(),
        description=dep.description, catchup=dep.catchup, max_lateness=dep.max_lateness,
    )


def changed_fields(plan: _Plan, existing) -> list[str]:
    want, have = _normal(plan.fields()), _normal(_existing_fields(existing))
    return [k for k in want if want[k] != have[k]]


# -- the whole operation ------------------------------------------------------------------------------

def _get_existing(client, full_name: str):
    try:
        return client.get_deployment_by_name(full_name)
    except NotFoundError:
        return None


def create_deployments(specs: list[DeploymentSpec], client=None, *, dry_run: bool = False,
                       echo: Callable[[str], None] | None = None) -> list[tuple[Any, bool]]:
    """Create or update a deployment per spec, all or none.

    Returns [(deployment, created)]; with `dry_run` nothing changes and the
    list holds (plan action, changed fields) per spec instead.
    """
    echo = echo or (lambda line: None)
    if client is None:
        from flowdeck.client import get_client

        client = get_client()
    plans = prepare(specs)
    cache: dict[str, _Storage] = {}
    storages = []
    for plan in plans:
        value = plan.spec.flow_storage
        try:
            if value is None:
                if "default" not in cache:
                    cache["default"] = default_storage(client)
                storages.append(cache["default"])
            else:
                storages.append(storage_for(value, client, dry_run=dry_run))
        except FlowdeckError as e:
            raise SpecError(f"{plan.spec.label()}: {e.message}") from None
    if dry_run:
        report = []
        for plan, storage in zip(plans, storages):
            _store(plan, storage, write=False)
            existing = _get_existing(client, plan.full_name)
            if existing is None:
                echo(f"Would create deployment {plan.full_name!r} for flow {plan.flow.name!r}.")
                report.append(("create", []))
                continue
            changes = changed_fields(plan, existing)
            if changes:
                echo(f"Would update deployment {plan.full_name!r}: {', '.join(changes)} would change.")
                report.append(("update", changes))
            else:
                echo(f"Deployment {plan.full_name!r} is unchanged.")
                report.append(("unchanged", []))
        return report
    from flowdeck.flow_data import display_path

    done: list[tuple[_Plan, Any, bool]] = []
    written: set[tuple[int, str]] = set()
    for plan, storage in zip(plans, storages):
        spec = plan.spec
        echo(f"Creating deployment {spec.name!r} for flow {plan.flow.name!r}...")
        try:
            plan.previous = _get_existing(client, plan.full_name)
            first = (id(storage), plan.script) not in written
            if first:
                echo(f"Deploying flow script from {display_path(plan.script)!r} using {storage.label}...")
            _store(plan, storage, write=first)
            written.add((id(storage), plan.script))
            dep, created = client.create_deployment(spec.name, **plan.fields())
        except FlowdeckError as e:
            undone = _undo(client, done)
            note = "; no deployment was created or changed" if undone else ""
            raise type(e)(f"{spec.label()}: {e.message}{note}", reason=e.reason, metadata=e.metadata) from None
        except Exception as e:  # noqa: BLE001 - e.g. storage write failure
            undone = _undo(client, done)
            note = "; no deployment was created or changed" if undone else ""
            raise SpecError(f"{spec.label()}: {type(e).__name__}: {e}{note}") from None
        done.append((plan, dep, created))
        if created:
            echo(f"Created deployment {dep.full_name!r}.")
            echo("View your new deployment with:")
        else:
            echo(f"Updated deployment {dep.full_name!r}.")
            echo("View your updated deployment with:")
        echo("")
        echo(f"    flowdeck deployment inspect {dep.full_name!r}")
    return [(dep, created) for _, dep, created in done]


def _undo(client, done: list) -> bool:
    """Delete what this create made and restore what it changed."""
    ok = True
    for plan, dep, created in reversed(done):
        try:
            if created:
                client.delete_deployment(dep.id)
            elif plan.previous is not None:
                prev = plan.previous
                client.create_deployment(prev.name, **{**_existing_fields(prev), "flow_name": prev.flow_name})
        except FlowdeckError:
            ok = False
    return ok
