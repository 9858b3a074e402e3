"""The Quick Run form, built from a deployment's parameter schema.

A JSON Schema (draft 2020-12, as pydantic writes it) becomes one field per
parameter: strings, numbers, integers and booleans as inputs, enums as a
choice, objects and arrays as JSON text. Values are read by their field's type;
a value that does not read as that type is sent as the text typed, so the
server's validator (the one place parameters are checked) refuses it and the
form shows why next to the field. Without a schema the form is one JSON object.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from flowdeck.core.schema_values import as_text, kind_of, properties, read as read_text, resolve

RAW = "__json__"  # the field name of the schema-less form


@dataclasses.dataclass
class Field:
    name: str
    kind: str  # string, integer, number, boolean, enum, json
    required: bool = False
    title: str = ""
    description: str = ""
    choices: list[Any] = dataclasses.field(default_factory=list)
    text: str = ""  # what the input shows
    nullable: bool = False
    error: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def choice_texts(self) -> list[str]:
        return [as_text(c, "enum") for c in self.choices]


def fields_for(schema: dict | None, defaults: dict) -> list[Field]:
    """The form's fields: one per schema property (in the flow's order), or
    one JSON object without a schema."""
    props = properties(schema)
    if not props:
        return [Field(RAW, "json", title="parameters (JSON object)",
                      text=json.dumps(defaults, indent=2, ensure_ascii=False, sort_keys=True))]
    required = set(schema.get("required") or ())
    out = []
    for name, prop in props:
        kind, choices, nullable = kind_of(prop, schema)
        resolved = resolve(prop, schema)
        value = defaults[name] if name in defaults else resolved.get("default")
        out.append(Field(name, kind, required=name in required, title=str(resolved.get("title") or ""),
                         description=str(resolved.get("description") or ""), choices=choices,
                         text=as_text(value, kind), nullable=nullable))
    return out


def _read(field: Field, text: str) -> tuple[bool, Any]:
    """(present, value): the text read as the field's type, or the text itself when it does not read."""
    if text.strip() == "":
        if field.kind == "string" and field.required:
            return True, ""
        return (True, None) if field.nullable and not field.required else (False, None)
    return True, read_text(text, field.kind, field.choices, field.nullable)


def read(fields: list[Field], form) -> tuple[dict, list[Field]]:
    """The parameters the form's values make, and the fields with the values typed.

    Only a schema-less form can fail here (its text must be a JSON object); every
    other value goes to the server, which decides."""
    params: dict = {}
    for field in fields:
        text = form.get(field.name)
        text = text if isinstance(text, str) else ""
        field.text = text
        if field.name == RAW:
            try:
                value = json.loads(text or "{}")
            except ValueError as e:
                field.error = f"not valid JSON: {e}"
                continue
            if not isinstance(value, dict):
                field.error = "must be a JSON object of parameter names and values"
                continue
            params.update(value)
            continue
        present, value = _read(field, text)
        if present:
            params[field.name] = value
    return params, fields


def place_errors(fields: list[Field], violations: list[tuple[str, str]]) -> list[str]:
    """Put the server's field violations (`parameters.count`) next to their
    fields; return the ones that fit no field (shown at the top of the form)."""
    by_name = {f.name: f for f in fields}
    loose = []
    for path, why in violations:
        head = path.split(".", 1)
        name = head[1].split(".", 1)[0].split("[", 1)[0] if head[0] == "parameters" and len(head) > 1 else None
        target = by_name.get(name) if name else None
        if target is None and head[0] == "parameters" and RAW in by_name:
            # The JSON box holds every parameter: say which one is refused.
            target, why = by_name[RAW], f"{path}: {why}"
        if target is None:
            loose.append(f"{path}: {why}" if path else why)
        else:
            target.error = f"{target.error}; {why}" if target.error else why
    return loose
