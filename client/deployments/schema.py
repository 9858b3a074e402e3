"""The JSON Schema (draft 2020-12) of a flow's parameters, from its signature.

    parameter_schema(flow) -> {"type": "object", "properties": {...}, "required": [...], ...}

pydantic writes it, so it says what the flow process accepts when it
validates a run's parameters: types, defaults, required parameters, enum and
Literal choices, nested models (under "$defs"), datetimes as "date-time"
strings, Optional as "anyOf" with null. Each property carries its place in
the signature as "position" (a Struct and Postgres' JSONB keep no key order)
and its description from the docstring's Args section. Unknown parameters
are refused ("additionalProperties": false) unless the flow takes **kwargs.

The deployment carries the schema, so the server checks every run's
parameters and nothing on the caller loads the flow's code.
"""
from __future__ import annotations

import functools
import inspect
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from flowdeck.flows import Flow


def parameter_schema(flow: "Flow") -> dict[str, Any]:
    """The JSON Schema of `flow`'s parameters."""
    params = list(flow.signature().parameters.values())
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind is not p.VAR_KEYWORD]
    docs = _argument_docs(flow.fn)
    with warnings.catch_warnings():
        # A default JSON cannot hold is left out of the schema, with a warning we do not need.
        warnings.simplefilter("ignore")
        try:
            return _schema(flow.name, named, docs, accepts_any, lambda p: True)
        except Exception:  # noqa: BLE001 - an annotation pydantic cannot describe: found and made Any
            return _schema(flow.name, named, docs, accepts_any, _describable)


def _schema(title: str, named: list[inspect.Parameter], docs: dict[str, str], accepts_any: bool,
            describable) -> dict[str, Any]:
    from pydantic import ConfigDict, create_model

    config = ConfigDict(extra="allow" if accepts_any else "forbid", arbitrary_types_allowed=True)
    # Fields are named by position, the parameter's name is their alias: a
    # parameter may be called `json` or `model_config`, which a model's own
    # attributes would shadow.
    fields = {f"p{i}": _field(p, i, docs.get(p.name), _annotation(p) if describable(p) else Any)
              for i, p in enumerate(named)}
    model = create_model(title, __config__=config, **fields)
    return model.model_json_schema(schema_generator=_generator())


def _annotation(p: inspect.Parameter) -> Any:
    ann = Any if p.annotation is p.empty else p.annotation
    return list[ann] if p.kind is p.VAR_POSITIONAL else ann


def _field(p: inspect.Parameter, position: int, description: str | None, annotation: Any) -> tuple[Any, Any]:
    from pydantic import Field

    extra = {"position": position}
    if p.kind is p.VAR_POSITIONAL:
        return annotation, Field(default_factory=list, alias=p.name, description=description, json_schema_extra=extra)
    default = ... if p.default is p.empty else p.default
    return annotation, Field(default, alias=p.name, description=description, json_schema_extra=extra)


def _describable(p: inspect.Parameter) -> bool:
    """Whether pydantic can write a JSON Schema of the parameter's annotation."""
    from flowdeck.flows import type_adapter

    adapter = type_adapter(_annotation(p))
    try:
        return adapter is not None and bool(adapter.json_schema())
    except Exception:  # noqa: BLE001 - e.g. an arbitrary class, an unresolvable forward reference
        return False


def _argument_docs(fn) -> dict[str, str]:
    """Parameter name -> its description in the docstring (Google, NumPy or reST style)."""
    import docstring_parser

    doc = inspect.getdoc(fn)
    if not doc:
        return {}
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return {}
    return {p.arg_name.lstrip("*"): " ".join(p.description.split()) for p in parsed.params if p.description}


@functools.cache
def _generator():
    from pydantic.json_schema import GenerateJsonSchema

    class ParameterSchema(GenerateJsonSchema):
        """Sets as arrays without "uniqueItems": the flow accepts duplicates (and drops them)."""

        def set_schema(self, schema):
            return _without_unique(super().set_schema(schema))

        def frozenset_schema(self, schema):
            return _without_unique(super().frozenset_schema(schema))

    return ParameterSchema


def _without_unique(schema: dict) -> dict:
    schema.pop("uniqueItems", None)
    return schema
