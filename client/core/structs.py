"""Struct and number helpers: protobuf Structs carry numbers as doubles."""
from __future__ import annotations

from typing import Any


def plain_numbers(value):
    """Struct numbers are doubles; give integral ones back as ints (3, not 3.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def struct_dict(msg) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return plain_numbers(MessageToDict(msg))


def jsonable(value: Any) -> Any:
    """`value` as plain JSON values (what a Struct holds): pydantic turns dates,
    UUIDs and models into them."""
    import json

    from pydantic_core import to_jsonable_python

    return json.loads(json.dumps(value, default=to_jsonable_python))
