"""Flows: the `@flow` decorator and the `Flow` class.

    from flowdeck import flow

    @flow
    def hello_world(name: str = "world"):
        print(f"Hello {name}!")

    hello_world(name="Earth")   # runs it; the server tracks the run

A flow's name defaults to the function's name with `_` turned into `-`.
Parameters are validated (and coerced) with pydantic against the function's
annotations before the run starts.

This module stays light: pydantic, grpc and the client are imported when a
flow is first validated or called.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from flowdeck.exceptions import InvalidArgumentError


class ParameterValidationError(InvalidArgumentError):
    """A flow parameter is missing, unknown or of the wrong type."""


def default_flow_name(fn: Callable) -> str:
    return fn.__name__.replace("_", "-")


class Flow:
    """A Python function that flowdeck runs and tracks."""

    def __init__(self, fn: Callable, *, name: str | None = None, version: str | None = None,
                 description: str | None = None, log_prints: bool = True):
        if not callable(fn):
            raise TypeError("@flow decorates a function")
        self.fn = fn
        self.name = name or default_flow_name(fn)
        if "/" in self.name:
            raise ValueError(f"flow name {self.name!r} must not contain '/'")
        self.version = version
        self.description = description if description is not None else inspect.getdoc(fn)
        self.log_prints = log_prints
        self._adapters: dict[str, Any] | None = None
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow here: a tracked flow run that returns the function's
        value, or re-raises its exception after the run is marked FAILED."""
        from flowdeck.engine import run_flow_call

        return run_flow_call(self, args, kwargs)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_adapters"] = None  # rebuilt on demand; TypeAdapters do not pickle
        return state

    # -- parameters --------------------------------------------------------------------

    def signature(self) -> inspect.Signature:
        try:
            return inspect.signature(self.fn, eval_str=True)
        except (NameError, TypeError, SyntaxError):
            return inspect.signature(self.fn)

    def parameter_names(self) -> list[str]:
        return [p.name for p in self.signature().parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def accepts_any_keyword(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in self.signature().parameters.values())

    def annotation_of(self, name: str) -> Any:
        """The parameter's annotation, or inspect.Parameter.empty."""
        p = self.signature().parameters.get(name)
        return inspect.Parameter.empty if p is None else p.annotation

    def _adapter(self, name: str):
        if self._adapters is None:
            self._adapters = {}
        if name not in self._adapters:
            ann = self.annotation_of(name)
            self._adapters[name] = None if ann is inspect.Parameter.empty else type_adapter(ann)
        return self._adapters[name]

    def validate_parameters(self, values: dict[str, Any], *, require_all: bool = True,
                            apply_defaults: bool = True) -> dict[str, Any]:
        """Validate and coerce `values` by the signature. Raises
        ParameterValidationError naming the parameter. Unknown names are errors
        unless the function takes **kwargs; missing required ones are errors
        when `require_all`."""
        from pydantic import ValidationError

        sig = self.signature()
        params = {p.name: p for p in sig.parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        varpos = {p.name for p in sig.parameters.values() if p.kind is p.VAR_POSITIONAL}
        unknown = [k for k in values if k not in params and k not in varpos]
        if unknown and not self.accepts_any_keyword():
            expected = ", ".join(params) or "none"
            raise ParameterValidationError(
                f"unknown parameter {unknown[0]!r} for flow {self.name!r} (parameters: {expected})"
            )
        out: dict[str, Any] = {}
        for name, p in params.items():
            if name in values:
                adapter = self._adapter(name)
                value = values[name]
                if adapter is not None:
                    try:
                        value = adapter.validate_python(value)
                    except ValidationError as e:
                        raise ParameterValidationError(_describe(self.name, name, e)) from None
                out[name] = value
            elif p.default is not p.empty:
                if apply_defaults:
                    out[name] = p.default
            elif require_all:
                raise ParameterValidationError(f"missing required parameter {name!r} for flow {self.name!r}")
        for name in unknown:
            out[name] = values[name]
        for name in varpos & set(values):
            out[name] = values[name]
        return out

    def bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """Positional and keyword arguments of a call as a name -> value dict."""
        try:
            bound = self.signature().bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"flow {self.name!r}: {e}") from None
        out = {}
        for name, value in bound.arguments.items():
            p = bound.signature.parameters[name]
            if p.kind is p.VAR_KEYWORD:
                out.update(value)
            elif p.kind is p.VAR_POSITIONAL:
                out[name] = list(value)
            else:
                out[name] = value
        return out

    def call_with(self, values: dict[str, Any]) -> Any:
        """Call the function with validated parameter values."""
        args, kwargs = [], {}
        for p in self.signature().parameters.values():
            if p.name not in values:
                continue
            if p.kind is p.POSITIONAL_ONLY:
                args.append(values[p.name])
            elif p.kind is p.VAR_POSITIONAL:
                args.extend(values[p.name])
            else:
                kwargs[p.name] = values[p.name]
        named = {p.name for p in self.signature().parameters.values()}
        kwargs.update({k: v for k, v in values.items() if k not in named})
        result = self.fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            import asyncio

            result = asyncio.run(result)
        return result


def type_adapter(annotation: Any):
    """A pydantic TypeAdapter of `annotation` (arbitrary classes by isinstance), or None."""
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(annotation)
    except Exception:  # noqa: BLE001 - e.g. arbitrary classes
        pass
    try:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # noqa: BLE001 - not something pydantic can check
        return None


def _describe(flow_name: str, name: str, err) -> str:
    first = err.errors()[0]
    loc = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.get("loc", ()))
    got = first.get("input")
    text = repr(got)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"invalid parameter {name!r}{loc} for flow {flow_name!r}: {first.get('msg')} (got {text})"


def flow(fn: Callable | None = None, *, name: str | None = None, version: str | None = None,
         description: str | None = None, log_prints: bool = True):
    """Make a function a flow: `@flow` or `@flow(name=..., version=..., description=...,
    log_prints=...)`."""
    if fn is None:
        return lambda f: Flow(f, name=name, version=version, description=description, log_prints=log_prints)
    return Flow(fn, name=name, version=version, description=description, log_prints=log_prints)


def is_flow(obj: Any) -> bool:
    return isinstance(obj, Flow)
