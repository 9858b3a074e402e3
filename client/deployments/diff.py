"""What a plan would change in the deployment that exists (dry runs), field
by field, with both sides in the form the server stores."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flowdeck.core.schedules import schedule_from_dict, schedule_from_proto
from flowdeck.core.structs import jsonable, plain_numbers
from flowdeck.deployments.plan import Plan
from flowdeck.models import Deployment


def existing_fields(dep: Deployment) -> dict[str, Any]:
    """A deployment's fields as `create_deployment` takes them (undo restores them so)."""
    return dict(
        flow_data=dep.flow_data, schedule=dep.schedule, is_schedule_active=dep.is_schedule_active,
        parameters=dep.parameters, tags=dep.tags, flow_runner=dep.flow_runner.model_dump(),
        description=dep.description, catchup=dep.catchup, max_lateness=dep.max_lateness,
        parameter_schema=dep.parameter_schema,
    )


def changed_fields(plan: Plan, existing: Deployment) -> list[str]:
    """The names of the fields that differ, in the order of Plan.fields()."""
    want, have = _normal(plan.fields()), _normal(existing_fields(existing))
    return [k for k in want if want[k] != have[k]]


def _normal_schedule(schedule: Any) -> dict | None:
    if not schedule:
        return None
    return schedule_from_proto(schedule_from_dict(schedule).to_proto()).to_dict()


def _plain(value: Any) -> Any:
    """Numbers as the server gives them back (integral floats are ints)."""
    return plain_numbers(jsonable(value))


def _normal(fields: dict[str, Any]) -> dict[str, Any]:
    fd = fields["flow_data"]
    try:
        blob = json.loads(fd.blob)
    except (ValueError, AttributeError):
        blob = getattr(fd, "blob", None)
    lateness = fields.get("max_lateness")
    if isinstance(lateness, dt.timedelta):
        lateness = lateness.total_seconds()
    runner = fields.get("flow_runner") or {}
    active = fields.get("is_schedule_active")
    return {
        "flow_data": (getattr(fd, "encoding", None), blob),
        "schedule": _normal_schedule(fields.get("schedule")),
        "is_schedule_active": True if active is None else bool(active),
        "parameters": jsonable(_plain(fields.get("parameters") or {})),
        "tags": list(fields.get("tags") or []),
        "flow_runner": {"type": runner.get("type") or "universal", "config": _plain(runner.get("config") or {})},
        "description": fields.get("description") or "",
        "catchup": bool(fields.get("catchup")),
        "max_lateness": float(lateness) if lateness is not None else None,
        "parameter_schema": _plain(fields.get("parameter_schema")) or None,
    }
