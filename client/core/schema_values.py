"""Parameter values typed by a deployment's parameter schema (JSON Schema, as
pydantic writes it): what the CLI's `--param key=value` and the dashboard's
Quick Run form read text with.

Each property has a kind: string, integer, number, boolean, enum (a choice)
or json (arrays, objects and unions, written as JSON). Text that does not read
as its kind is kept as the text, so the server's check (the one place
parameters are judged) refuses it and says why.
"""
from __future__ import annotations

import json
from typing import Any

SCALARS = {"string", "integer", "number", "boolean"}


def properties(schema: dict | None) -> list[tuple[str, dict]]:
    """(name, property) of each parameter, in the flow's signature order
    ("position": a Struct keeps no key order); properties without one last,
    as they come."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return []
    items = [(str(k), v if isinstance(v, dict) else {}) for k, v in props.items()]

    def position(item) -> float:
        value = item[1].get("position")
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")

    return sorted(items, key=position)


def resolve(prop: dict, schema: dict) -> dict:
    """Follow a local $ref (#/$defs/Name) once; the property's own keys win."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = dict(target) if isinstance(target, dict) else {}
        merged.update({k: v for k, v in prop.items() if k != "$ref"})
        return merged
    return prop


def kind_of(prop: dict, schema: dict) -> tuple[str, list, bool]:
    """(kind, choices, nullable) of one property."""
    prop = resolve(prop, schema)
    nullable = False
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list):
        kept = [resolve(o, schema) for o in options if isinstance(o, dict) and o.get("type") != "null"]
        nullable = len(kept) < len(options)
        if len(kept) != 1:
            return "json", [], nullable
        prop = kept[0]
    if "enum" in prop and isinstance(prop["enum"], list):
        return "enum", list(prop["enum"]), nullable
    if "const" in prop:
        return "enum", [prop["const"]], nullable
    t = prop.get("type")
    if isinstance(t, list):
        nullable = nullable or "null" in t
        t = [x for x in t if x != "null"]
        t = t[0] if len(t) == 1 else None
    return (t if t in SCALARS else "json"), [], nullable


def as_text(value: Any, kind: str) -> str:
    """A value as its kind writes it (the inverse of `read`)."""
    if value is None:
        return ""
    if kind in ("string", "enum") and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def read(text: str, kind: str, choices: list | None = None, nullable: bool = False) -> Any:
    """The text as a value of `kind`; the text itself when it does not read
    as one (`null` is None for a nullable property that is not a string)."""
    stripped = text.strip()
    if nullable and kind != "string" and stripped == "null":
        return None
    try:
        if kind == "integer":
            return int(stripped)
        if kind == "number":
            n = float(stripped)
            return int(n) if n.is_integer() and "." not in stripped and "e" not in stripped.lower() else n
        if kind == "boolean":
            low = stripped.lower()
            return low == "true" if low in ("true", "false") else text
        if kind == "enum":
            return next((c for c in choices or () if as_text(c, "enum") == text), text)
        if kind == "json":
            return json.loads(text)
    except ValueError:
        return text
    return text


def type_text(prop: dict, schema: dict) -> str:
    """A property's type in a few words: "integer", "string (date-time)",
    "array of integer", "Color: red | green", "integer | null", "Config (object)"."""
    named = isinstance(prop.get("$ref"), str)  # a type of its own, e.g. an Enum or a model
    prop = resolve(prop, schema)
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list):
        return " | ".join(type_text(o, schema) for o in options if isinstance(o, dict)) or "any"
    if isinstance(prop.get("enum"), list):
        choices = " | ".join(as_text(c, "enum") for c in prop["enum"])
        return f"{prop['title']}: {choices}" if named and prop.get("title") else choices
    if "const" in prop:
        return as_text(prop["const"], "enum")
    t = prop.get("type")
    if isinstance(t, list):
        return " | ".join(str(x) for x in t)
    if t == "array":
        items = prop.get("items")
        return f"array of {type_text(items, schema)}" if isinstance(items, dict) and items else "array"
    if t == "object" and named and prop.get("title"):
        return f"{prop['title']} (object)"
    if t == "string" and prop.get("format"):
        return f"string ({prop['format']})"
    return str(t) if t else "any"
