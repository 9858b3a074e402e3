"""Parameter schemas: the JSON Schema (draft 2020-12) of a deployment's flow
parameters, and the check of parameters against it.

The server has no flow code: the SDK computes the schema from the flow's
signature and sends it with the deployment. The server checks the schema when
it is stored, the deployment's defaults at create and update (a required
parameter may be left to each run), and every run's parameters merged over the
defaults. A refusal is INVALID_ARGUMENT with one field violation per bad
parameter (`parameters.count: 'abc' is not of type 'integer'`).

Formats the flow process reads (date-time, date, time, duration, uuid) are
checked with pydantic, as the flow's own validation reads them, so a value
the server lets through is one the flow accepts. Compiled validators are kept
by the schema's canonical JSON, so a run costs no compilation.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError
from referencing.exceptions import Unresolvable

from flowdeck.core.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError, invalid_field

MAX_DESCRIPTION = 300  # characters of a violation's description (an instance can be large)

FORMATS = FormatChecker(formats=())


def _pydantic_format(name: str, python_type: type) -> None:
    adapter = TypeAdapter(python_type)

    @FORMATS.checks(name, raises=PydanticError)
    def check(value: Any) -> bool:
        if isinstance(value, str):
            adapter.validate_python(value)
        return True


for _name, _type in (("date-time", dt.datetime), ("date", dt.date), ("time", dt.time),
                     ("duration", dt.timedelta), ("uuid", uuid.UUID)):
    _pydantic_format(_name, _type)


# -- the schema ----------------------------------------------------------------------

def check_schema(schema: dict | None, path: str = "deployment.parameter_schema") -> dict | None:
    """The schema if it can check parameters (an empty one is None: no schema);
    INVALID_ARGUMENT on `path` otherwise. A schema seen before is not checked again."""
    if not schema:
        return None
    problem = _schema_problem(_canonical(schema))
    if problem is not None:
        where, value, why = problem
        raise invalid_field(path + where, value, why, reason="INVALID_PARAMETER_SCHEMA")
    return schema


@functools.lru_cache(maxsize=512)
def _schema_problem(canonical: str) -> tuple[str, Any, str] | None:
    """(where below the schema's path, the bad value, why) of the first problem, or None."""
    schema = json.loads(canonical)
    if schema.get("type") != "object":
        return ".type", schema.get("type"), "must be 'object': parameters are an object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return _field("", e.absolute_path), e.instance, _short(e.message)
    for where, ref in _refs(schema, ""):
        if not ref.startswith("#"):
            return where, ref, "must point inside the schema (#/$defs/...)"
        if _pointer(schema, ref) is None:
            return where, ref, "points at nothing in the schema"
    return None


def _refs(value: Any, path: str):
    """(where, reference) of every $ref and $dynamicRef in the schema."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                yield f"{path}.{key}", item
            else:
                yield from _refs(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _refs(item, f"{path}[{i}]")


def _pointer(schema: dict, ref: str) -> Any:
    """What a local reference ("#", "#/$defs/Name") points at; None when nothing."""
    target: Any = schema
    for part in ref[1:].lstrip("/").split("/") if ref != "#" else ():
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target


def _canonical(schema: dict) -> str:
    """The schema's JSON with sorted keys: what the caches know it by."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=512)
def _compiled(canonical: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(canonical), format_checker=FORMATS)


def validator(schema: dict) -> Draft202012Validator:
    """The compiled validator of a stored schema, from the cache when it was seen before."""
    return _compiled(_canonical(schema))


# -- parameters ----------------------------------------------------------------------

def check(schema: dict | None, parameters: dict, *, path: str = "parameters", require_all: bool = True,
          required_why: str = "") -> None:
    """Refuse `parameters` that do not fit `schema` (None: anything goes).
    `require_all=False` lets required parameters be missing (a deployment's
    defaults); `required_why` says why a missing one is needed. One field
    violation per bad parameter."""
    if not schema:
        return
    try:
        errors = list(validator(schema).iter_errors(parameters))
    except Unresolvable as e:
        raise FailedPreconditionError(f"the deployment's parameter schema cannot be used: {e}",
                                      reason="PARAMETER_SCHEMA_UNUSABLE") from None
    violations = _violations(schema, parameters, errors, path, require_all, required_why)
    if violations:
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgumentError(message, violations=violations, reason="INVALID_PARAMETERS")


def _violations(schema: dict, parameters: dict, errors: list[ValidationError], path: str,
                require_all: bool, required_why: str = "") -> list[FieldViolation]:
    out: list[FieldViolation] = []
    by_parameter: dict[str, list[ValidationError]] = {}
    for err in errors:
        if err.absolute_path:
            by_parameter.setdefault(str(err.absolute_path[0]), []).append(err)
        elif err.validator == "required":
            if require_all:
                out += [FieldViolation(f"{path}.{name}", f"is required{required_why}")
                        for name in schema.get("required", ()) if name not in parameters]
        elif err.validator in ("additionalProperties", "unevaluatedProperties"):
            known = ", ".join(sorted(schema.get("properties") or {})) or "none"
            out += [FieldViolation(f"{path}.{name}", f"is not a parameter of this flow (parameters: {known})")
                    for name in _unknown(schema, parameters)]
        else:
            out.append(FieldViolation(path, _short(err.message)))
    for errs in by_parameter.values():
        err = best_match(errs)
        out.append(FieldViolation(_field(path, err.absolute_path), _describe(err)))
    unique = list(dict.fromkeys(out))  # `required` yields one error per missing name, each listing all
    return sorted(unique, key=lambda v: v.field)


def _unknown(schema: dict, parameters: dict) -> list[str]:
    props = schema.get("properties") or {}
    patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
    return [k for k in parameters if k not in props and not any(p.search(k) for p in patterns)]


def _describe(err: ValidationError) -> str:
    """jsonschema's message; for a value fitting none of a few types ("integer
    or null") the types, rather than "not valid under any of the given schemas"."""
    if err.validator in ("anyOf", "oneOf") and err.context and all(
            e.validator == "type" and not e.relative_path for e in err.context):
        types = " or ".join(repr(e.validator_value) for e in err.context if isinstance(e.validator_value, str))
        if types:
            return _short(f"{err.instance!r} is not of type {types}")
    return _short(err.message)


def _field(path: str, parts) -> str:
    return path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _short(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."
