"""Python values and models -> the generated request messages (`flowdeck.v1`).

The reverse direction is `_convert`. Builders take what a user passes to a
client method (models, dicts, schedule and runner objects, datetimes) and
refuse what cannot be sent with an InvalidArgumentError naming the argument.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2

from flowdeck import exceptions as exc
from flowdeck import models
from flowdeck.core.structs import jsonable
from flowdeck.v1 import api_key_service_pb2 as akpb
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_data_service_pb2 as fdpb
from flowdeck.v1 import flow_run_service_pb2 as rpb


class _Unset:
    """An update argument that was not given (None may mean "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def given(**fields) -> dict[str, Any]:
    """The update arguments that were given: the update mask."""
    return {k: v for k, v in fields.items() if v is not UNSET}


def field_mask(paths) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A naive datetime is read as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(dt.timezone.utc))
    return out


def duration(value: float | dt.timedelta) -> duration_pb2.Duration:
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    return duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


def struct(d: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(jsonable(d))
    return s


def state_type(name: str) -> int:
    try:
        return c.StateType.Value(f"STATE_TYPE_{name.upper()}")
    except ValueError:
        raise exc.InvalidArgumentError(f"invalid state type {name!r}", field="state") from None


def flow_run_window(name: str) -> int:
    """"started_or_due", "upcoming" or "" (every run) as the FlowRunWindow value."""
    try:
        return rpb.FlowRunWindow.Value(f"FLOW_RUN_WINDOW_{name.upper() or 'UNSPECIFIED'}")
    except ValueError:
        raise exc.InvalidArgumentError(f"invalid window {name!r}: must be 'started_or_due', 'upcoming' or ''",
                                       field="window") from None


def state_message(value: str | models.State | None, name: str = "", message: str = "") -> c.State | None:
    if value is None:
        return None
    if isinstance(value, models.State):
        return c.State(type=state_type(value.type), name=value.name, message=value.message)
    return c.State(type=state_type(value), name=name, message=message)


def schedule_message(value) -> c.Schedule | None:
    """A schedule object (`flowdeck.schedules`), its dict form, or a Schedule message."""
    if value is None:
        return None
    if isinstance(value, c.Schedule):
        return value
    from flowdeck.core.schedules import schedule_from_dict

    if isinstance(value, dict):
        value = schedule_from_dict(value)
    return value.to_proto()


def runner_message(value) -> c.FlowRunnerSettings | None:
    """A runner object (`flowdeck.flow_runners`), FlowRunnerSettings or {"type", "config"}."""
    if value is None:
        return None
    if isinstance(value, c.FlowRunnerSettings):
        return value
    if isinstance(value, dict):
        return c.FlowRunnerSettings(type=value.get("type", "universal"), config=struct(value.get("config")))
    if hasattr(value, "to_settings"):
        value = value.to_settings()
    return c.FlowRunnerSettings(type=value.type, config=struct(value.config))


def flow_data_message(value: models.FlowData | dict) -> c.FlowData:
    fd = value if isinstance(value, dict) else value.model_dump()
    return c.FlowData(encoding=fd.get("encoding", ""), blob=fd.get("blob", ""))


# Deployment fields that go into the message as they are.
_PLAIN_DEPLOYMENT_FIELDS = ("name", "flow_name", "flow_id", "description", "catchup", "is_schedule_active")


def deployment_message(id: str = "", **fields) -> c.Deployment:
    """A Deployment holding `fields` (the arguments of FlowdeckClient's
    create_deployment and update_deployment); None leaves a field unset."""
    msg = c.Deployment(id=id, tags=list(fields.get("tags") or []),
                       **{k: fields[k] for k in _PLAIN_DEPLOYMENT_FIELDS if fields.get(k) is not None})
    msg.parameters.CopyFrom(struct(fields.get("parameters")))
    if fields.get("parameter_schema"):
        msg.parameter_schema.CopyFrom(struct(fields["parameter_schema"]))
    if fields.get("flow_data") is not None:
        msg.flow_data.CopyFrom(flow_data_message(fields["flow_data"]))
    sched = schedule_message(fields.get("schedule"))
    if sched is not None:
        msg.schedule.CopyFrom(sched)
    runner = runner_message(fields.get("flow_runner"))
    if runner is not None:
        msg.flow_runner.CopyFrom(runner)
    if fields.get("max_lateness") is not None:
        msg.max_lateness.CopyFrom(duration(fields["max_lateness"]))
    return msg


def flow_run_message(*, flow_name: str = "", flow_id: str = "", deployment_id: str = "", name: str = "",
                     parameters: dict | None = None, tags: list[str] | None = None, state_name: str | None = None,
                     expected_start_time: dt.datetime | None = None, idempotency_key: str = "",
                     flow_runner=None) -> c.FlowRun:
    run = c.FlowRun(flow_name=flow_name, flow_id=flow_id, deployment_id=deployment_id, name=name,
                    tags=list(tags or []), idempotency_key=idempotency_key)
    run.parameters.CopyFrom(struct(parameters))
    st = state_message(state_name)
    if st is not None:
        run.state.CopyFrom(st)
    if expected_start_time is not None:
        run.expected_start_time.CopyFrom(timestamp(expected_start_time))
    runner = runner_message(flow_runner)
    if runner is not None:
        run.flow_runner.CopyFrom(runner)
    return run


def log_messages(records: list[models.LogRecord | dict]) -> list[c.LogRecord]:
    out = []
    for r in records:
        r = r if isinstance(r, models.LogRecord) else models.LogRecord(**r)
        out.append(c.LogRecord(flow_run_id=r.flow_run_id, timestamp=timestamp(r.timestamp), level=r.level,
                               logger_name=r.logger_name, message=r.message))
    return out


def work_queue_message(*, id: str = "", name: str = "", description: str = "", tags: list[str] | None = None,
                       deployment_ids: list[str] | None = None, flow_runner_types: list[str] | None = None,
                       is_paused: bool = False, concurrency_limit: int | None = None) -> c.WorkQueue:
    msg = c.WorkQueue(id=id, name=name, description=description, is_paused=is_paused,
                      filter=c.WorkQueueFilter(tags=list(tags or []), deployment_ids=list(deployment_ids or []),
                                               flow_runner_types=list(flow_runner_types or [])))
    if concurrency_limit is not None:
        msg.concurrency_limit = concurrency_limit
    return msg


def storage_block_message(block_type: str, config: dict | None, is_default: bool) -> c.StorageBlock:
    return c.StorageBlock(type=block_type, config=struct(config), is_default=is_default)


def api_key_scope(scope: str) -> int:
    try:
        return akpb.ApiKeyScope.Value(f"API_KEY_SCOPE_{scope.upper()}")
    except ValueError:
        raise exc.InvalidArgumentError(
            f"invalid scope {scope!r}: must be one of read, write, agent, admin", field="scope") from None


def upload_requests(data: bytes, *, flow_name: str, filename: str, chunk_size: int,
                    storage_block_id: str = "") -> Iterator[fdpb.UploadFlowDataRequest]:
    """An UploadFlowData stream: the metadata, then the bytes in chunks."""
    yield fdpb.UploadFlowDataRequest(metadata=fdpb.FlowDataMetadata(
        flow_name=flow_name, filename=filename, size=len(data), storage_block_id=storage_block_id))
    for i in range(0, len(data), chunk_size):
        yield fdpb.UploadFlowDataRequest(chunk=data[i:i + chunk_size])
