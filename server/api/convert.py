"""Proto <-> domain conversion, and validation of what comes in: the one place
servicers turn messages into inputs and views into messages."""
from __future__ import annotations

import datetime as dt
import json
import math
import uuid

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict

from flowdeck.core.errors import InvalidArgumentError, invalid_field
from flowdeck.core.schedules import InvalidSchedule, schedule_from_dict, schedule_from_proto
from flowdeck.core.structs import plain_numbers
from flowdeck.server import storage_blocks
from flowdeck.server.api_keys import SCOPES as API_KEY_SCOPES
from flowdeck.server.deployments import DeploymentInput
from flowdeck.server.dispatcher import CancelOrder
from flowdeck.server.leasing import Lease
from flowdeck.server.models import ApiKeyRow, FlowRow, LogRow, StorageBlockRow, WorkQueueRow
from flowdeck.server.run_inputs import FlowRunInput, StateInput
from flowdeck.server.views import DeploymentView, FlowRunView, RunSummary
from flowdeck.server.work_queues import MUTABLE as WORK_QUEUE_FIELDS
from flowdeck.server.work_queues import NO_RUNS, RunCounts, WorkQueueInput
from flowdeck.v1 import agent_service_pb2 as apb
from flowdeck.v1 import api_key_service_pb2 as kpb
from flowdeck.v1 import common_pb2 as c

MAX_NAME = 200
MAX_TAG = 200


# -- scalars -----------------------------------------------------------------

def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(dt.timezone.utc))
    return out


def from_ts(msg, field: str, path: str) -> dt.datetime | None:
    """The datetime in msg.<field>, None when unset; range-checked."""
    if not msg.HasField(field):
        return None
    t = getattr(msg, field)
    # Timestamp's valid range is years 1..9999 (seconds -62135596800..253402300799).
    if not (-62135596800 <= t.seconds <= 253402300799) or not (0 <= t.nanos < 1_000_000_000):
        raise invalid_field(path, f"{t.seconds}s{t.nanos}ns", "is out of the Timestamp range")
    return t.ToDatetime(tzinfo=dt.timezone.utc)


def uuid_str(value: str, path: str, required: bool = True) -> str:
    if not value:
        if required:
            raise invalid_field(path, value, "is required")
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid_field(path, value, "must be a UUID") from None


def name(value: str, path: str, allow_slash: bool = False) -> str:
    if not value or not value.strip():
        raise invalid_field(path, value, "is required")
    if len(value) > MAX_NAME:
        raise invalid_field(path, value, f"must be at most {MAX_NAME} characters")
    if not allow_slash and "/" in value:
        raise invalid_field(path, value, "must not contain '/'")
    if any(ord(ch) < 32 for ch in value):
        raise invalid_field(path, value, "must not contain control characters")
    return value


def tags(values, path: str) -> list[str]:
    out = []
    for i, t in enumerate(values):
        if not t or len(t) > MAX_TAG:
            raise invalid_field(f"{path}[{i}]", t, f"must be 1 to {MAX_TAG} characters")
        if t not in out:
            out.append(t)
    return out




def struct_to_dict(msg: struct_pb2.Struct, path: str) -> dict:
    # Checked on the message: MessageToDict itself refuses NaN and infinities.
    def check(v: struct_pb2.Value, p):
        kind = v.WhichOneof("kind")
        if kind == "number_value" and (math.isnan(v.number_value) or math.isinf(v.number_value)):
            raise invalid_field(p, v.number_value, "must be a finite number")
        if kind == "struct_value":
            for k, x in v.struct_value.fields.items():
                check(x, f"{p}.{k}")
        if kind == "list_value":
            for i, x in enumerate(v.list_value.values):
                check(x, f"{p}[{i}]")

    for k, x in msg.fields.items():
        check(x, f"{path}.{k}")
    return plain_numbers(MessageToDict(msg))


def find_nul(msg, path: str = "") -> tuple[str, str] | None:
    """The first string (or map key) holding a NUL character anywhere in `msg`, as
    (field path, value). Postgres cannot store NUL in text or jsonb, so no request
    may carry one, on any backend."""
    for field, value in msg.ListFields():
        p = f"{path}.{field.name}" if path else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if isinstance(k, str) and "\x00" in k:
                    return f"{p}[{k!r}]", k
                if value_field.message_type is not None:
                    found = find_nul(v, f"{p}.{k}")
                    if found:
                        return found
                elif isinstance(v, str) and "\x00" in v:
                    return f"{p}.{k}", v
            continue
        items = value if field.is_repeated else [value]
        for i, item in enumerate(items):
            ip = f"{p}[{i}]" if field.is_repeated else p
            if field.message_type is not None:
                found = find_nul(item, ip)
                if found:
                    return found
            elif isinstance(item, str) and "\x00" in item:
                return ip, item
    return None


def dict_to_struct(d: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(d)
    return s


def state_type_name(value: int, path: str) -> str:
    if value == c.STATE_TYPE_UNSPECIFIED:
        raise invalid_field(path, "STATE_TYPE_UNSPECIFIED", "must name a state type")
    try:
        return c.StateType.Name(value).removeprefix("STATE_TYPE_")
    except ValueError:
        raise invalid_field(path, value, "is not a known state type") from None


def enum_name(enum, value: int, path: str, prefix: str) -> str:
    """An enum value's name without `prefix`; "" for UNSPECIFIED."""
    try:
        name_ = enum.Name(value)
    except ValueError:
        raise invalid_field(path, value, "is not a known value") from None
    short = name_.removeprefix(prefix)
    return "" if short == "UNSPECIFIED" else short


def state_type_value(name_: str) -> int:
    return c.StateType.Value(f"STATE_TYPE_{name_}")


# -- schedules ---------------------------------------------------------------

def schedule_in(msg, path: str, *, required: bool = False):
    """The schedule in `msg.schedule` (a deployment or a preview request),
    validated; None when unset and not required."""
    if not msg.HasField("schedule") or msg.schedule.WhichOneof("kind") is None:
        if required:
            raise invalid_field(path, None, "is required: set one of interval, cron, rrule")
        return None
    try:
        return schedule_from_proto(msg.schedule)
    except InvalidSchedule as e:
        raise schedule_error(e, path) from None


def schedule_error(e, path: str) -> InvalidArgumentError:
    """An InvalidSchedule as INVALID_ARGUMENT naming the field under `path`
    (``deployment.schedule.cron.timezone``) and the bad value."""
    field = e.field.replace("schedule", path, 1) if e.field.startswith("schedule") else f"{path}.{e.field}"
    err = invalid_field(field, e.value, e.reason, reason="INVALID_SCHEDULE")
    # The schedule's own wording shows values readably ("0s", not timedelta(0)).
    err.message = str(e).replace(e.field, field, 1)
    return err


def schedule_out(d: dict | None) -> c.Schedule | None:
    if not d:
        return None
    return schedule_from_dict(d).to_proto()


# -- deployments -------------------------------------------------------------

def deployment_in(msg: c.Deployment, path: str = "deployment", *, for_create: bool = True) -> DeploymentInput:
    inp = DeploymentInput()
    if for_create or msg.name:
        inp.name = name(msg.name, f"{path}.name")
    if for_create:
        if msg.flow_id:
            inp.flow_id = uuid_str(msg.flow_id, f"{path}.flow_id")
        if msg.flow_name:
            inp.flow_name = name(msg.flow_name, f"{path}.flow_name")
        if not inp.flow_id and not inp.flow_name:
            raise invalid_field(f"{path}.flow_name", "", "flow_id or flow_name is required")
    fd = msg.flow_data
    if len(fd.encoding) > 32:
        raise invalid_field(f"{path}.flow_data.encoding", fd.encoding, "must be at most 32 characters")
    inp.flow_data_encoding = fd.encoding
    inp.flow_data_blob = fd.blob
    inp.storage_block_id = storage_block_of(fd, f"{path}.flow_data.blob")
    sched = schedule_in(msg, f"{path}.schedule")
    inp.schedule = None if sched is None else sched.to_dict()
    inp.is_schedule_active = msg.is_schedule_active if msg.HasField("is_schedule_active") else True
    inp.parameters = struct_to_dict(msg.parameters, f"{path}.parameters")
    if msg.HasField("parameter_schema"):
        inp.parameter_schema = struct_to_dict(msg.parameter_schema, f"{path}.parameter_schema") or None
    inp.tags = tags(msg.tags, f"{path}.tags")
    inp.flow_runner_type = msg.flow_runner.type or "universal"
    inp.flow_runner_config = struct_to_dict(msg.flow_runner.config, f"{path}.flow_runner.config")
    inp.description = msg.description
    inp.catchup = msg.catchup
    if msg.HasField("max_lateness"):
        secs = msg.max_lateness.seconds + msg.max_lateness.nanos / 1e9
        # Duration's valid range is +-10,000 years; beyond it nothing can hold it.
        if not -315576000000 <= msg.max_lateness.seconds <= 315576000000:
            raise invalid_field(f"{path}.max_lateness", secs, "is out of the Duration range")
        if secs <= 0:
            raise invalid_field(f"{path}.max_lateness", secs, "must be greater than zero")
        inp.max_lateness_seconds = secs
    return inp


def storage_block_of(fd: c.FlowData, path: str) -> str | None:
    if fd.encoding != "blockstorage":
        return None
    try:
        blob = json.loads(fd.blob)
        block_id = blob["block_id"]
    except (ValueError, KeyError, TypeError):
        raise invalid_field(path, fd.blob, "must be JSON with a block_id for encoding 'blockstorage'") from None
    if block_id in (None, "", "local"):
        return None
    return uuid_str(str(block_id), f"{path}.block_id")


def deployment_out(row: DeploymentView) -> c.Deployment:
    msg = c.Deployment(
        id=row.id,
        created=ts(row.created),
        updated=ts(row.updated),
        name=row.name,
        flow_id=row.flow_id,
        flow_name=row.flow_name,
        flow_data=c.FlowData(encoding=row.flow_data_encoding, blob=row.flow_data_blob),
        is_schedule_active=row.is_schedule_active,
        parameters=dict_to_struct(row.parameters),
        tags=row.tags or [],
        flow_runner=c.FlowRunnerSettings(
            type=row.flow_runner_type, config=dict_to_struct(row.flow_runner_config)
        ),
        description=row.description or "",
        catchup=row.catchup,
        storage_block_id=row.storage_block_id or "",
    )
    sched = schedule_out(row.schedule)
    if sched is not None:
        msg.schedule.CopyFrom(sched)
    if row.max_lateness_seconds is not None:
        msg.max_lateness.FromTimedelta(dt.timedelta(seconds=row.max_lateness_seconds))
    if row.next_run_time is not None:
        msg.next_run_time.CopyFrom(ts(row.next_run_time))
    if row.parameter_schema:
        msg.parameter_schema.CopyFrom(dict_to_struct(row.parameter_schema))
    if row.last_run is not None:
        msg.last_run.CopyFrom(run_summary_out(row.last_run))
    return msg


def run_summary_out(run: RunSummary) -> c.FlowRunSummary:
    return c.FlowRunSummary(id=run.id, name=run.name,
                            state=state_out(run.state_type, run.state_name, "", run.state_timestamp),
                            expected_start_time=ts(run.expected_start_time), start_time=ts(run.start_time),
                            end_time=ts(run.end_time))


# -- flow runs ---------------------------------------------------------------

def state_in(msg: c.State, path: str) -> StateInput:
    t = state_type_name(msg.type, f"{path}.type")
    if len(msg.name) > 64:
        raise invalid_field(f"{path}.name", msg.name, "must be at most 64 characters")
    return StateInput(type=t, name=msg.name, message=msg.message)


def flow_run_in(msg: c.FlowRun, path: str = "flow_run") -> FlowRunInput:
    inp = FlowRunInput()
    if msg.flow_id:
        inp.flow_id = uuid_str(msg.flow_id, f"{path}.flow_id")
    elif msg.flow_name:
        inp.flow_name = name(msg.flow_name, f"{path}.flow_name")
    else:
        raise invalid_field(f"{path}.flow_name", "", "flow_id or flow_name is required")
    if msg.deployment_id:
        inp.deployment_id = uuid_str(msg.deployment_id, f"{path}.deployment_id")
    if msg.name:
        inp.name = name(msg.name, f"{path}.name")
    inp.parameters = struct_to_dict(msg.parameters, f"{path}.parameters")
    inp.tags = tags(msg.tags, f"{path}.tags")
    if msg.HasField("state"):
        inp.state = state_in(msg.state, f"{path}.state")
    inp.expected_start_time = from_ts(msg, "expected_start_time", f"{path}.expected_start_time")
    if len(msg.idempotency_key) > 300:
        raise invalid_field(f"{path}.idempotency_key", msg.idempotency_key, "must be at most 300 characters")
    inp.idempotency_key = msg.idempotency_key or None
    if len(msg.flow_runner.type) > 64:
        raise invalid_field(f"{path}.flow_runner.type", msg.flow_runner.type, "must be at most 64 characters")
    inp.flow_runner_type = msg.flow_runner.type
    inp.flow_runner_config = struct_to_dict(msg.flow_runner.config, f"{path}.flow_runner.config")
    return inp


def state_out(type_: str, name_: str, message: str, timestamp: dt.datetime) -> c.State:
    return c.State(type=state_type_value(type_), name=name_, message=message, timestamp=ts(timestamp))


def flow_run_out(row: FlowRunView) -> c.FlowRun:
    msg = c.FlowRun(
        id=row.id,
        name=row.name,
        flow_id=row.flow_id,
        flow_name=row.flow_name,
        deployment_id=row.deployment_id or "",
        parameters=dict_to_struct(row.parameters),
        tags=row.tags or [],
        state=state_out(row.state_type, row.state_name, row.state_message, row.state_timestamp),
        expected_start_time=ts(row.expected_start_time),
        start_time=ts(row.start_time),
        end_time=ts(row.end_time),
        idempotency_key=row.idempotency_key or "",
        flow_runner=c.FlowRunnerSettings(
            type=row.flow_runner_type, config=dict_to_struct(row.flow_runner_config)
        ),
        created=ts(row.created),
        updated=ts(row.updated),
        auto_scheduled=row.auto_scheduled,
    )
    msg.total_run_time.FromTimedelta(dt.timedelta(seconds=row.total_run_time or 0.0))
    for h in row.history:
        msg.state_history.append(state_out(h.type, h.name, h.message, h.timestamp))
    if row.lease_id:
        msg.lease.CopyFrom(
            c.Lease(
                lease_id=row.lease_id,
                agent_id=row.agent_id or "",
                agent_name=row.agent_name or "",
                fencing_token=row.fencing_token,
                expire_time=ts(row.lease_expires),
            )
        )
    return msg


def flow_out(row: FlowRow) -> c.Flow:
    return c.Flow(id=row.id, name=row.name, created=ts(row.created), updated=ts(row.updated))


def log_out(row: LogRow) -> c.LogRecord:
    return c.LogRecord(
        flow_run_id=row.flow_run_id,
        timestamp=ts(row.timestamp),
        level=row.level,
        logger_name=row.logger_name,
        message=row.message,
    )


# -- work queues, storage blocks, API keys -------------------------------------

MAX_DESCRIPTION = 10_000


def work_queue_in(msg: c.WorkQueue, path: str = "work_queue", *, for_create: bool = True,
                  paths: list[str] | None = None) -> WorkQueueInput:
    paths = list(WORK_QUEUE_FIELDS) if paths is None else paths
    inp = WorkQueueInput()
    if for_create or "name" in paths:
        inp.name = name(msg.name, f"{path}.name")
    if len(msg.description) > MAX_DESCRIPTION:
        raise invalid_field(f"{path}.description", msg.description, f"must be at most {MAX_DESCRIPTION} characters")
    inp.description = msg.description
    inp.tags = tags(msg.filter.tags, f"{path}.filter.tags")
    ids = []
    for i, d in enumerate(msg.filter.deployment_ids):
        d = uuid_str(d, f"{path}.filter.deployment_ids[{i}]")
        if d not in ids:
            ids.append(d)
    inp.deployment_ids = ids
    inp.flow_runner_types = list(dict.fromkeys(msg.filter.flow_runner_types))
    inp.is_paused = msg.is_paused
    inp.concurrency_limit = msg.concurrency_limit if msg.HasField("concurrency_limit") else None
    return inp


def work_queue_out(row: WorkQueueRow, counts: RunCounts = NO_RUNS) -> c.WorkQueue:
    msg = c.WorkQueue(
        id=row.id,
        name=row.name,
        description=row.description or "",
        filter=c.WorkQueueFilter(
            tags=row.filter_tags or [],
            deployment_ids=row.filter_deployment_ids or [],
            flow_runner_types=row.filter_flow_runner_types or [],
        ),
        is_paused=row.is_paused,
        created=ts(row.created),
        updated=ts(row.updated),
        late_runs=counts.late,
        running_runs=counts.running,
    )
    if row.concurrency_limit is not None:
        msg.concurrency_limit = row.concurrency_limit
    return msg


def storage_block_out(row: StorageBlockRow) -> c.StorageBlock:
    """Always masked: secrets leave the server only inside a run's lease."""
    view = storage_blocks.public(row)
    return c.StorageBlock(
        id=view.id,
        type=view.type,
        config=dict_to_struct(view.config),
        is_default=view.is_default,
        created=ts(view.created),
        updated=ts(view.updated),
    )


def api_key_scope_in(value: int, path: str) -> str:
    if value == kpb.API_KEY_SCOPE_UNSPECIFIED:
        raise invalid_field(path, "API_KEY_SCOPE_UNSPECIFIED", f"must be one of {', '.join(API_KEY_SCOPES)}")
    try:
        return kpb.ApiKeyScope.Name(value).removeprefix("API_KEY_SCOPE_").lower()
    except ValueError:
        raise invalid_field(path, value, "is not a known scope") from None


def api_key_out(row: ApiKeyRow) -> kpb.ApiKey:
    msg = kpb.ApiKey(
        id=row.id, name=row.name, scope=kpb.ApiKeyScope.Value(f"API_KEY_SCOPE_{row.scope.upper()}"),
        created=ts(row.created), created_by=row.created_by or "",
    )
    if row.revoked is not None:
        msg.revoked.CopyFrom(ts(row.revoked))
    return msg


# -- agents and leases -------------------------------------------------------

MAX_AGENT_CAPACITY = 10_000
MAX_AGENT_QUEUES = 100


def agent_hello_in(msg: apb.AgentHello) -> dict:
    """The hello's fields, validated: the keyword arguments of Dispatcher.connect."""
    agent_id = uuid_str(msg.agent_id, "hello.agent_id", required=False)
    agent_name = msg.agent_name
    if agent_name:
        name(agent_name, "hello.agent_name")
    if not msg.work_queues:
        raise invalid_field("hello.work_queues", [], "must name at least one work queue")
    if len(msg.work_queues) > MAX_AGENT_QUEUES:
        raise invalid_field("hello.work_queues", len(msg.work_queues), f"must name at most {MAX_AGENT_QUEUES} queues")
    queues = []
    for i, q in enumerate(msg.work_queues):
        name(q, f"hello.work_queues[{i}]")
        if q not in queues:
            queues.append(q)
    if not 0 <= msg.capacity <= MAX_AGENT_CAPACITY:
        raise invalid_field("hello.capacity", msg.capacity, f"must be between 0 and {MAX_AGENT_CAPACITY}")
    ttl = 0.0
    if msg.HasField("lease_ttl"):
        ttl = msg.lease_ttl.seconds + msg.lease_ttl.nanos / 1e9
        if ttl < 0:
            raise invalid_field("hello.lease_ttl", ttl, "must not be negative (0: the server's TTL)")
    return dict(agent_id=agent_id, agent_name=agent_name, queue_names=queues, capacity=msg.capacity,
                requested_ttl=ttl)


def leased_run_out(lease: Lease) -> apb.LeasedRun:
    msg = apb.LeasedRun(flow_run=flow_run_out(lease.run), server_time=ts(lease.server_time))
    msg.lease.CopyFrom(msg.flow_run.lease)
    if lease.deployment is not None:
        msg.deployment.CopyFrom(deployment_out(lease.deployment))
        msg.flow_data.CopyFrom(msg.deployment.flow_data)
    if lease.storage is not None:
        storage_type, storage_config = lease.storage
        msg.storage_type = storage_type
        msg.storage_config.CopyFrom(dict_to_struct(storage_config))
    msg.flow_runner.type = lease.runner_type
    msg.flow_runner.config.CopyFrom(dict_to_struct(lease.runner_config))
    msg.trace_context.update(lease.trace_context or {})
    return msg


def lease_response_out(item: Lease | CancelOrder) -> apb.LeaseResponse:
    """What the dispatcher puts in an agent's outbox, as the stream's message."""
    if isinstance(item, CancelOrder):
        return apb.LeaseResponse(cancel_run=apb.CancelRun(flow_run_id=item.flow_run_id, lease_id=item.lease_id))
    return apb.LeaseResponse(leased_run=leased_run_out(item))
