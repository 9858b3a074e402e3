"""Names a deployment script uses but never defines.

The concept document writes `DeploymentSpec(flow=hello_world, flow_location=...)`
in a file that never imports `hello_world`: while a spec script runs, such a
name is an `Unresolved` placeholder, and any real use of it is a NameError.
"""
from __future__ import annotations

from typing import Any


class Unresolved:
    """Stands for a name a spec script uses without defining it."""

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


def find_unresolved(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, name) of the first `Unresolved` inside `value`, if any."""
    if isinstance(value, Unresolved):
        return path, value._name
    if isinstance(value, dict):
        for k, v in value.items():
            hit = find_unresolved(v, f"{path}.{k}")
            if hit:
                return hit
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = find_unresolved(v, f"{path}[{i}]")
            if hit:
                return hit
    return None
