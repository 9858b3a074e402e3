"""Generated messages (`flowdeck.v1`) -> the typed models of `flowdeck.models`.

The reverse direction is `_messages`. The agent reads the runs it leases with
these too.
"""
from __future__ import annotations

import datetime as dt

from flowdeck.core.models import (ApiKey, Deployment, Flow, FlowData, FlowRun, FlowRunnerSettings, FlowRunSummary,
                                  Lease, LogRecord, State, StorageBlock, WorkQueue, WorkQueueFilter)
from flowdeck.core.structs import struct_dict
from flowdeck.v1 import api_key_service_pb2 as akpb
from flowdeck.v1 import common_pb2


def _ts(msg, field: str) -> dt.datetime | None:
    if not msg.HasField(field):
        return None
    return getattr(msg, field).ToDatetime(tzinfo=dt.timezone.utc)


def _state_name(value: int) -> str:
    return common_pb2.StateType.Name(value).removeprefix("STATE_TYPE_")


def state_from_pb(msg) -> State:
    return State(type=_state_name(msg.type), name=msg.name, message=msg.message,
                 timestamp=_ts(msg, "timestamp"))


def flow_from_pb(msg) -> Flow:
    return Flow(id=msg.id, name=msg.name, created=_ts(msg, "created"), updated=_ts(msg, "updated"))


def runner_from_pb(msg) -> FlowRunnerSettings:
    return FlowRunnerSettings(type=msg.type, config=struct_dict(msg.config))


def flow_data_from_pb(msg) -> FlowData:
    return FlowData(encoding=msg.encoding, blob=msg.blob)


def deployment_from_pb(msg) -> Deployment:
    schedule = None
    if msg.HasField("schedule") and msg.schedule.WhichOneof("kind"):
        from flowdeck.core.schedules import schedule_from_proto

        schedule = schedule_from_proto(msg.schedule).to_dict()
    return Deployment(
        id=msg.id,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
        name=msg.name,
        flow_id=msg.flow_id,
        flow_name=msg.flow_name,
        flow_data=flow_data_from_pb(msg.flow_data),
        schedule=schedule,
        is_schedule_active=msg.is_schedule_active if msg.HasField("is_schedule_active") else True,
        parameters=struct_dict(msg.parameters),
        parameter_schema=struct_dict(msg.parameter_schema) if msg.HasField("parameter_schema") else None,
        tags=list(msg.tags),
        flow_runner=runner_from_pb(msg.flow_runner),
        description=msg.description,
        catchup=msg.catchup,
        max_lateness=msg.max_lateness.ToTimedelta().total_seconds() if msg.HasField("max_lateness") else None,
        storage_block_id=msg.storage_block_id or None,
        next_run_time=_ts(msg, "next_run_time"),
        last_run=run_summary_from_pb(msg.last_run) if msg.HasField("last_run") else None,
    )


def run_summary_from_pb(msg) -> FlowRunSummary:
    return FlowRunSummary(id=msg.id, name=msg.name, state=state_from_pb(msg.state),
                          expected_start_time=_ts(msg, "expected_start_time"), start_time=_ts(msg, "start_time"),
                          end_time=_ts(msg, "end_time"))


def flow_run_from_pb(msg) -> FlowRun:
    lease = None
    if msg.HasField("lease") and msg.lease.lease_id:
        lease = Lease(
            lease_id=msg.lease.lease_id,
            agent_id=msg.lease.agent_id,
            agent_name=msg.lease.agent_name,
            fencing_token=msg.lease.fencing_token,
            expire_time=_ts(msg.lease, "expire_time"),
        )
    return FlowRun(
        id=msg.id,
        name=msg.name,
        flow_id=msg.flow_id,
        flow_name=msg.flow_name,
        deployment_id=msg.deployment_id or None,
        parameters=struct_dict(msg.parameters),
        tags=list(msg.tags),
        state=state_from_pb(msg.state),
        expected_start_time=_ts(msg, "expected_start_time"),
        start_time=_ts(msg, "start_time"),
        end_time=_ts(msg, "end_time"),
        total_run_time=msg.total_run_time.ToTimedelta().total_seconds(),
        idempotency_key=msg.idempotency_key or None,
        flow_runner=runner_from_pb(msg.flow_runner),
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
        state_history=[state_from_pb(s) for s in msg.state_history],
        lease=lease,
        auto_scheduled=msg.auto_scheduled,
    )


def log_from_pb(msg) -> LogRecord:
    return LogRecord(
        flow_run_id=msg.flow_run_id,
        timestamp=_ts(msg, "timestamp"),
        level=msg.level,
        logger_name=msg.logger_name,
        message=msg.message,
    )


def work_queue_from_pb(msg) -> WorkQueue:
    return WorkQueue(
        id=msg.id,
        name=msg.name,
        description=msg.description,
        filter=WorkQueueFilter(
            tags=list(msg.filter.tags),
            deployment_ids=list(msg.filter.deployment_ids),
            flow_runner_types=list(msg.filter.flow_runner_types),
        ),
        is_paused=msg.is_paused,
        concurrency_limit=msg.concurrency_limit if msg.HasField("concurrency_limit") else None,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
        late_runs=msg.late_runs,
        running_runs=msg.running_runs,
    )


def storage_block_from_pb(msg) -> StorageBlock:
    return StorageBlock(
        id=msg.id,
        type=msg.type,
        config=struct_dict(msg.config),
        is_default=msg.is_default,
        created=_ts(msg, "created"),
        updated=_ts(msg, "updated"),
    )


def api_key_from_pb(msg) -> ApiKey:
    return ApiKey(
        id=msg.id,
        name=msg.name,
        scope=akpb.ApiKeyScope.Name(msg.scope).removeprefix("API_KEY_SCOPE_").lower(),
        created=_ts(msg, "created"),
        revoked=_ts(msg, "revoked"),
        created_by=msg.created_by,
    )


def schedule_times_from_pb(resp, zone_name: str) -> list[dt.datetime]:
    """A PreviewSchedule response as aware datetimes in the schedule's timezone."""
    out = []
    for utc, local in zip(resp.times, resp.local_times):
        if zone_name:
            from zoneinfo import ZoneInfo

            out.append(utc.ToDatetime(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(zone_name)))
        else:
            out.append(dt.datetime.fromisoformat(local))
    return out
