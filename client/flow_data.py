"""FlowData documents: how a deployment's flow is found again.

Encodings (the `blob` is a string):

* "file"         JSON {"path", "flow_name"}: a script on this machine.
* "text"         JSON {"source", "flow_name", "filename"}: the script's text.
* "cloudpickle"  base64 of cloudpickle.dumps(flow).
* "blockstorage" JSON {"block_id", "block_type", "block_config", "key",
                 "flow_name", "filename"}: the script's text kept in a storage
                 block under a content-addressed key. `block_config` is only
                 written for "local" blocks (never secrets); blocks the server
                 knows are named by `block_id`.

`load_flow(flow_data)` turns any of them back into the `Flow`.
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import os
import sys
import types
from pathlib import Path
from typing import Any, Iterator

from flowdeck.exceptions import FlowdeckError, InvalidArgumentError, NotFoundError
from flowdeck.flows import Flow

ENCODINGS = ("file", "text", "cloudpickle", "blockstorage")
FLOW_MODULE = "__flowdeck_flow__"


class FlowLoadError(FlowdeckError):
    """A flow could not be loaded from a script or FlowData."""

    code = "FAILED_PRECONDITION"


def _doc(encoding: str, blob: str):
    from flowdeck.models import FlowData

    return FlowData(encoding=encoding, blob=blob)


# -- making documents ---------------------------------------------------------------

def file_flow_data(path: str | os.PathLike, flow_name: str):
    return _doc("file", json.dumps({"path": str(Path(path).resolve()), "flow_name": flow_name}))


def text_flow_data(source: str, flow_name: str, filename: str = "flow.py"):
    return _doc("text", json.dumps({"source": source, "flow_name": flow_name, "filename": str(filename)}))


def cloudpickle_flow_data(flow: Flow):
    import cloudpickle

    return _doc("cloudpickle", base64.b64encode(cloudpickle.dumps(flow)).decode("ascii"))


def blockstorage_flow_data(*, key: str, flow_name: str, filename: str, block_id: str | None = None,
                           block_type: str = "local", block_config: dict | None = None):
    blob = {"block_id": block_id, "block_type": block_type, "block_config": block_config, "key": key,
            "flow_name": flow_name, "filename": str(filename)}
    return _doc("blockstorage", json.dumps(blob))


# -- running scripts -------------------------------------------------------------------

# Where deployment specs made now go (None: nowhere). A spec script runs with
# a list here (the loader's); a flow script with None, so the specs next to
# its flow are not collected by whoever loads it.
_collector: contextvars.ContextVar[list | None] = contextvars.ContextVar("flowdeck_spec_collector", default=None)


@contextlib.contextmanager
def collecting(into: list | None) -> Iterator[list | None]:
    """Deployment specs made inside go to `into` (None: they are dropped)."""
    token = _collector.set(into)
    try:
        yield into
    finally:
        _collector.reset(token)


def collect(spec) -> None:
    """Called by every new DeploymentSpec."""
    target = _collector.get()
    if target is not None:
        target.append(spec)


@contextlib.contextmanager
def script_path_on_sys_path(filename: str | None) -> Iterator[None]:
    """The script's folder first on sys.path while it runs (for sibling imports)."""
    folder = os.path.dirname(os.path.abspath(filename)) if filename else None
    if not folder or not os.path.isdir(folder):
        yield
        return
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
        # Sibling modules the script imported are forgotten again, so the next
        # script with a sibling of the same name (another project) gets its own.
        prefix = folder + os.sep
        for name in set(sys.modules) - before:
            path = getattr(sys.modules.get(name), "__file__", None) or ""
            if os.path.abspath(path).startswith(prefix):
                sys.modules.pop(name, None)


def exec_script(source: str | bytes, filename: str, *, module_name: str = FLOW_MODULE,
                namespace: dict | None = None, specs: list | None = None) -> dict:
    """Run a script as a module named `module_name` with `__file__` set and
    return its namespace. Deployment specs the script makes go to `specs`
    (None: they are dropped). Errors are FlowLoadError with the file and line."""
    if namespace is None:
        module = types.ModuleType(module_name)
        namespace = module.__dict__
    else:
        module = None
    namespace.update({"__name__": module_name, "__file__": str(filename), "__builtins__": __builtins__})
    try:
        code = compile(source, str(filename), "exec", dont_inherit=True)
    except SyntaxError as e:
        raise FlowLoadError(f"syntax error in {display_path(e.filename or filename)!r} line {e.lineno}: {e.msg}") from None
    previous = sys.modules.get(module_name)
    if module is not None:
        sys.modules[module_name] = module
    try:
        with script_path_on_sys_path(filename), collecting(specs):
            exec(code, namespace)
    except FlowdeckError as e:
        # A flowdeck object the script made is invalid (a CronSchedule with a
        # bad expression): say where, as for any other failure in the script.
        shown = display_path(filename)
        where = _line_in(e, filename)
        if where and shown not in e.message:
            e.message = f"{shown!r}{where}: {e.message}"
            e.args = (e.message,)
        raise
    except Exception as e:  # noqa: BLE001 - the user's script failed
        raise FlowLoadError(f"running {display_path(filename)!r} failed{_line_in(e, filename)}: "
                            f"{type(e).__name__}: {e}") from e
    finally:
        # Out of sys.modules again: the script is no importable module, so
        # cloudpickle keeps its functions by value.
        if module is not None:
            if previous is None:
                sys.modules.pop(module_name, None)
            else:
                sys.modules[module_name] = previous
    return namespace


def _line_in(error: BaseException, filename: str) -> str:
    line = None
    tb = error.__traceback__
    target = os.path.abspath(str(filename))
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def display_path(path: str | os.PathLike) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(str(path))
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def flows_in(namespace: dict) -> list[Flow]:
    seen: list[Flow] = []
    for value in list(namespace.values()):
        if isinstance(value, Flow) and not any(value is s for s in seen):
            seen.append(value)
    return seen


def pick_flow(flows: list[Flow], flow_name: str | None, where: str, *, function_name: str | None = None) -> Flow:
    """The flow named `flow_name` (or whose function is `function_name`), or
    the only one."""
    names = ", ".join(repr(f.name) for f in flows) or "none"
    if flow_name:
        for f in flows:
            if f.name == flow_name:
                return f
        for f in flows:
            if f.fn.__name__ == flow_name:
                return f
        raise NotFoundError(f"flow {flow_name!r} not found in {where!r}; flows found: {names}")
    if function_name:
        for f in flows:
            if f.fn.__name__ == function_name or f.name == function_name:
                return f
        raise NotFoundError(f"flow {function_name!r} not found in {where!r}; flows found: {names}")
    if not flows:
        raise NotFoundError(f"no flows found in {where!r}: decorate a function with @flow")
    if len(flows) > 1:
        raise InvalidArgumentError(
            f"several flows found in {where!r}: {names}; set flow_name to choose one"
        )
    return flows[0]


def load_flow_from_source(source: str | bytes, filename: str, flow_name: str | None = None) -> Flow:
    namespace = exec_script(source, filename)
    return pick_flow(flows_in(namespace), flow_name, display_path(filename))


def load_flow_from_script(path: str | os.PathLike, flow_name: str | None = None) -> Flow:
    path = Path(path).expanduser()
    try:
        source = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"flow script {display_path(path)!r} not found") from None
    except OSError as e:
        raise FlowLoadError(f"cannot read flow script {display_path(path)!r}: {e.strerror}") from None
    return load_flow_from_source(source, str(path.resolve()), flow_name)


# -- loading documents ------------------------------------------------------------------

def _blob_json(encoding: str, blob: str, required: tuple[str, ...]) -> dict:
    try:
        data = json.loads(blob)
    except ValueError:
        raise FlowLoadError(f"flow_data with encoding {encoding!r} must have a JSON blob") from None
    if not isinstance(data, dict):
        raise FlowLoadError(f"flow_data with encoding {encoding!r} must have a JSON object blob")
    missing = [k for k in required if not data.get(k)]
    if missing:
        raise FlowLoadError(f"flow_data with encoding {encoding!r} lacks {', '.join(missing)}")
    return data


def load_flow(flow_data, client=None, *, storage_config: dict | None = None) -> Flow:
    """The flow a FlowData (model or dict with `encoding` and `blob`) points at.

    For "blockstorage" with a `block_id` and no `block_config` in the blob,
    the block's config comes from `storage_config` (what an agent is handed
    with a leased run), else from the server through `client`.
    """
    if isinstance(flow_data, dict):
        encoding, blob = flow_data.get("encoding", ""), flow_data.get("blob", "")
    else:
        encoding, blob = flow_data.encoding, flow_data.blob
    if encoding == "file":
        data = _blob_json(encoding, blob, ("path",))
        return load_flow_from_script(data["path"], data.get("flow_name"))
    if encoding == "text":
        data = _blob_json(encoding, blob, ("source",))
        return load_flow_from_source(data["source"], data.get("filename") or "flow.py", data.get("flow_name"))
    if encoding == "cloudpickle":
        import cloudpickle

        try:
            obj = cloudpickle.loads(base64.b64decode(blob))
        except Exception as e:  # noqa: BLE001
            raise FlowLoadError(f"cannot unpickle the flow: {type(e).__name__}: {e}") from e
        if not isinstance(obj, Flow):
            raise FlowLoadError(f"the pickled object is a {type(obj).__name__}, not a flow")
        return obj
    if encoding == "blockstorage":
        data = _blob_json(encoding, blob, ("key",))
        source = read_from_block(data, client, storage_config)
        return load_flow_from_source(source, data.get("filename") or "flow.py", data.get("flow_name"))
    if not encoding:
        raise FlowLoadError("the deployment has no flow_data")
    raise FlowLoadError(f"unknown flow_data encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def read_from_block(data: dict, client=None, storage_config: dict | None = None) -> bytes:
    from flowdeck.blocks.storage import block_from_document

    block_type = data.get("block_type") or "local"
    config = data.get("block_config")
    block_id = data.get("block_id")
    if storage_config:
        # The lease's config (secrets in clear) completes the public one in the blob.
        config = {**(config or {}), **storage_config}
    if config is None and block_id:
        config, block_type = _registered_config(client, block_id, block_type)
    if config is None and block_type == "local" and not block_id:
        config = {}  # the default local block, $FLOWDECK_HOME/storage
    if config is None:
        raise FlowLoadError(f"flow_data names storage block {block_id!r} but no block config is at hand "
                            "(pass storage_config, or a client that can read the block)")
    try:
        block = block_from_document(block_type, config, client)
        return block.read(data["key"])
    except FileNotFoundError as e:
        raise FlowLoadError(str(e)) from None
    except (ValueError, OSError) as e:
        raise FlowLoadError(f"cannot read the flow from {block_type} storage: {e}") from None


def _registered_config(client, block_id: str, block_type: str) -> tuple[dict | None, str]:
    """A registered block's config, masked: the server hands secrets out only
    in a run's lease; credentials come from storage_config or this environment."""
    if client is None:
        return None, block_type
    try:
        block = client.get_storage_block(block_id)
    except FlowdeckError as e:
        raise FlowLoadError(f"cannot get storage block {block_id!r} from the server: {e.message}") from None
    return block.config, block.type or block_type


def describe(flow_data) -> dict[str, Any]:
    """The blob of a FlowData as a dict, for display (cloudpickle: size only)."""
    encoding = flow_data.get("encoding") if isinstance(flow_data, dict) else flow_data.encoding
    blob = flow_data.get("blob") if isinstance(flow_data, dict) else flow_data.blob
    if encoding == "cloudpickle":
        return {"encoding": encoding, "bytes": len(blob) * 3 // 4}
    try:
        return {"encoding": encoding, **json.loads(blob)}
    except ValueError:
        return {"encoding": encoding, "blob": blob}
