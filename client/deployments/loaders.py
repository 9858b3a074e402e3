"""Spec files: every DeploymentSpec a Python script or a YAML file makes.

A Python script runs with lenient globals (`unresolved`); every spec it makes
is collected. A YAML file holds the same fields as DeploymentSpec, one spec per
document (`---` between them); a relative flow_location is read from the
file's folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from flowdeck.deployments.errors import SpecError, spec_label
from flowdeck.deployments.spec import DeploymentSpec, made_at
from flowdeck.deployments.unresolved import LenientNamespace
from flowdeck.exceptions import NotFoundError
from flowdeck.flow_data import FlowLoadError, collecting, display_path, exec_script


def file_kind(path: str | os.PathLike) -> Literal["python", "yaml"]:
    """What a spec file is, by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".py":
        return "python"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise SpecError(f"{os.fspath(path)!r} is neither a Python script (.py) nor a YAML file (.yaml, .yml)")


def load_specs(path: str | os.PathLike) -> list[DeploymentSpec]:
    """Every spec a .py or .yaml file makes, in order."""
    kind = file_kind(path)
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"file {display_path(p)!r} not found" if not p.exists()
                            else f"{display_path(p)!r} is not a file")
    try:
        text = p.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {display_path(p)!r}: {e.strerror}") from None
    if kind == "yaml":
        specs = _load_yaml(text, p)
    else:
        specs = _load_python(text, p)
    if not specs:
        raise SpecError(f"no deployment specs found in {display_path(p)!r}")
    return specs


def _load_python(source: bytes, path: Path) -> list[DeploymentSpec]:
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
            raise SpecError(spec_label(data.get("name"), source) + ": flow: YAML specs name the flow's script "
                            "with flow_location (and flow_name)")
        with made_at(source, base), collecting(specs):
            DeploymentSpec(**{str(k): v for k, v in data.items()})
    return specs
