"""Request limits: what one request may carry, checked before any handler
stores anything (RESOURCE_EXHAUSTED or INVALID_ARGUMENT naming the limit).

Every request message is checked, one message at a time in a client stream,
against the fields a limit applies to: tags (max_tags), parameters and
parameter schemas (max_parameters_bytes) and flow data (max_flow_data_bytes). Flow data sent in
pieces (UploadFlowData) adds up across the call, so an upload over the limit
is refused while it streams in. The plan of which fields to look at is worked
out once per message type.
"""
from __future__ import annotations

from flowdeck.core.errors import ResourceExhaustedError, invalid_field
from flowdeck.server.settings import Settings

# Flow data sent in pieces, and the size an upload declares up front.
_FLOW_DATA_PIECE = "flowdeck.v1.UploadFlowDataRequest.chunk"
_FLOW_DATA_DECLARED_SIZE = "flowdeck.v1.FlowDataMetadata.size"
_FLOW_DATA_SETTING = "FLOWDECK_MAX_FLOW_DATA_BYTES"

_PLANS: dict[str, list] = {}


def _plan(desc, stack: tuple = ()) -> list:
    """The fields of `desc` (and below) that a limit applies to."""
    cached = _PLANS.get(desc.full_name)
    if cached is not None:
        return cached
    plan = []
    for field in desc.fields:
        mt = field.message_type
        if field.full_name in (_FLOW_DATA_PIECE, _FLOW_DATA_DECLARED_SIZE):
            plan.append(("piece" if field.full_name == _FLOW_DATA_PIECE else "declared", field, None))
        elif field.name == "tags" and mt is None and field.is_repeated:
            plan.append(("tags", field, None))
        elif mt is None or mt.GetOptions().map_entry:
            continue
        elif mt.full_name == "google.protobuf.Struct" and field.name in ("parameters", "parameter_schema"):
            plan.append(("parameters", field, None))
        elif mt.full_name == "flowdeck.v1.FlowData":
            plan.append(("flow_data", field, None))
        elif not mt.full_name.startswith("google.protobuf.") and mt.full_name not in stack:
            sub = _plan(mt, stack + (desc.full_name,))
            if sub:
                plan.append(("nested", field, sub))
    if not stack:
        _PLANS[desc.full_name] = plan
    return plan


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


class CallLimits:
    """The limits of one call: `check` each request message as it comes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.flow_data_bytes = 0  # flow data received in pieces so far

    def check(self, request) -> None:
        plan = _plan(request.DESCRIPTOR)
        if plan:
            self._check(request, plan, "")

    def _check(self, msg, plan, path: str) -> None:
        for kind, field, sub in plan:
            p = f"{path}.{field.name}" if path else field.name
            if kind == "tags":
                n = len(getattr(msg, field.name))
                if n > self.settings.max_tags:
                    raise invalid_field(p, n, f"holds more than the server's limit of {self.settings.max_tags} "
                                              "tags (FLOWDECK_MAX_TAGS)")
            elif kind in ("piece", "declared"):
                self._flow_data_size(kind, getattr(msg, field.name))
            elif field.is_repeated:
                for i, item in enumerate(getattr(msg, field.name)):
                    self._check_one(kind, item, sub, f"{p}[{i}]")
            elif msg.HasField(field.name):
                self._check_one(kind, getattr(msg, field.name), sub, p)

    def _check_one(self, kind: str, value, sub, path: str) -> None:
        if kind == "parameters":
            size, limit, env = value.ByteSize(), self.settings.max_parameters_bytes, "FLOWDECK_MAX_PARAMETERS_BYTES"
        elif kind == "flow_data":
            limit, env = self.settings.max_flow_data_bytes, _FLOW_DATA_SETTING
            # Characters are at least one byte: encode only when it could matter.
            size = len(value.blob) if len(value.blob) * 4 <= limit else len(value.blob.encode("utf-8"))
            path = f"{path}.blob"
        else:
            self._check(value, sub, path)
            return
        if size > limit:
            raise ResourceExhaustedError(
                f"{path} is {_size(size)}, over the server's limit of {_size(limit)} ({env})",
                reason="REQUEST_LIMIT_EXCEEDED", field=path, limit=str(limit), setting=env,
            )

    def _flow_data_size(self, kind: str, value) -> None:
        if kind == "piece":
            self.flow_data_bytes += len(value)
            size = self.flow_data_bytes
        else:
            size = value
        limit = self.settings.max_flow_data_bytes
        if size > limit:
            raise ResourceExhaustedError(
                f"flow data of {_size(size)} is over the server's limit of {_size(limit)} ({_FLOW_DATA_SETTING})",
                reason="FLOW_DATA_TOO_LARGE", limit=str(limit), setting=_FLOW_DATA_SETTING,
            )
