"""The typed flowdeck client: generated stubs in, pydantic models out.

    from flowdeck.client import get_client
    client = get_client()          # FLOWDECK_API_URL, else the embedded default
    dep, created = client.create_deployment("daily", flow_name="etl")

Mutations carry a request_id (AIP-155) that is reused when the call is retried
after UNAVAILABLE or DEADLINE_EXCEEDED, so a retry never applies twice. Reads
are retried the same way; nothing else is.
"""
from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any, Iterator

import grpc
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2

from flowdeck import exceptions as exc
from flowdeck import models
from flowdeck.client._status import error_from_rpc_error
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import deployment_service_pb2 as dpb
from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc
from flowdeck.v1 import flow_run_service_pb2 as rpb
from flowdeck.v1 import flow_run_service_pb2_grpc as rgrpc
from flowdeck.v1 import flow_service_pb2 as fpb
from flowdeck.v1 import flow_service_pb2_grpc as fgrpc
from flowdeck.v1 import log_service_pb2 as lpb
from flowdeck.v1 import log_service_pb2_grpc as lgrpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _address(url: str) -> str:
    for prefix in ("grpc://", "http://", "dns:///"):
        if url.startswith(prefix):
            return url[len(prefix):].rstrip("/")
    return url.rstrip("/")


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(dt.timezone.utc))
    return out


def struct(d: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(_jsonable(d))
    return s


def _jsonable(value):
    """Struct takes JSON values; let pydantic turn dates, UUIDs and models into them."""
    import json

    from pydantic_core import to_jsonable_python

    return json.loads(json.dumps(value, default=to_jsonable_python))


def state_type(name: str) -> int:
    try:
        return c.StateType.Value(f"STATE_TYPE_{name.upper()}")
    except ValueError:
        raise exc.InvalidArgumentError(f"invalid state type {name!r}") from None


def schedule_pb(schedule) -> c.Schedule | None:
    if schedule is None:
        return None
    if isinstance(schedule, c.Schedule):
        return schedule
    from flowdeck.core.schedules import schedule_from_dict

    if isinstance(schedule, dict):
        schedule = schedule_from_dict(schedule)
    return schedule.to_proto()


def runner_pb(runner) -> c.FlowRunnerSettings | None:
    if runner is None:
        return None
    if isinstance(runner, c.FlowRunnerSettings):
        return runner
    if isinstance(runner, dict):
        return c.FlowRunnerSettings(type=runner.get("type", "universal"), config=struct(runner.get("config")))
    if hasattr(runner, "to_settings"):
        runner = runner.to_settings()
    return c.FlowRunnerSettings(type=runner.type, config=struct(runner.config))


def translate(err: grpc.RpcError, address: str) -> exc.FlowdeckError:
    return error_from_rpc_error(err, address)


class FlowdeckClient:
    """Synchronous client over one gRPC channel."""

    def __init__(self, address: str, *, timeout: float = 30.0, retries: int = 3, channel: grpc.Channel | None = None,
                 api_key: str | None = None):
        from flowdeck.channels import make_channel

        self.address = _address(address)
        self.timeout = timeout
        self.retries = retries
        # TLS (FLOWDECK_API_TLS_*) and the API key (`api_key`, else FLOWDECK_API_KEY).
        self.channel = channel or make_channel(
            self.address, api_key=api_key,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                     ("grpc.max_send_message_length", 64 * 1024 * 1024),
                     ("grpc.enable_retries", 0)],
        )
        self.flows = fgrpc.FlowServiceStub(self.channel)
        self.deployments = dgrpc.DeploymentServiceStub(self.channel)
        self.flow_runs = rgrpc.FlowRunServiceStub(self.channel)
        self.logs = lgrpc.LogServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def stub(self, module_grpc, service: str):
        """A raw stub for services this client does not wrap yet."""
        return getattr(module_grpc, f"{service}Stub")(self.channel)

    def call(self, method, request, *, idempotent: bool = True, timeout: float | None = None):
        """Call with retries on UNAVAILABLE/DEADLINE_EXCEEDED (idempotent calls only)."""
        attempts = self.retries if idempotent else 1
        delay = 0.1
        for attempt in range(attempts):
            try:
                return method(request, timeout=timeout or self.timeout)
            except grpc.RpcError as err:
                if err.code() in RETRYABLE and attempt + 1 < attempts:
                    time.sleep(delay)
                    delay *= 3
                    continue
                raise translate(err, self.address) from None

    def mutate(self, method, request):
        """Mutations get a request_id once; retries reuse it, so they apply once."""
        if hasattr(request, "request_id") and not request.request_id:
            request.request_id = str(uuid.uuid4())
        return self.call(method, request, idempotent=True)

    def _pages(self, method, request, field: str, limit: int | None) -> Iterator:
        got = 0
        while True:
            if limit is not None:
                request.page_size = min(1000, max(1, limit - got))
            response = self.call(method, request)
            for item in getattr(response, field):
                yield item
                got += 1
                if limit is not None and got >= limit:
                    return
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    # -- flows -----------------------------------------------------------------

    def create_flow(self, name: str) -> models.Flow:
        return models.flow_from_pb(self.mutate(self.flows.CreateFlow, fpb.CreateFlowRequest(flow=c.Flow(name=name))))

    def get_flow(self, flow_id: str) -> models.Flow:
        return models.flow_from_pb(self.call(self.flows.GetFlow, fpb.GetFlowRequest(id=flow_id)))

    def get_flow_by_name(self, name: str) -> models.Flow:
        return models.flow_from_pb(self.call(self.flows.GetFlowByName, fpb.GetFlowByNameRequest(name=name)))

    def list_flows(self, limit: int | None = 50, name_prefix: str = "") -> list[models.Flow]:
        req = fpb.ListFlowsRequest(name_prefix=name_prefix)
        return [models.flow_from_pb(m) for m in self._pages(self.flows.ListFlows, req, "flows", limit)]

    def delete_flow(self, flow_id: str) -> None:
        self.call(self.flows.DeleteFlow, fpb.DeleteFlowRequest(id=flow_id), idempotent=False)

    # -- deployments -------------------------------------------------------------

    @staticmethod
    def deployment_message(
        name: str = "",
        *,
        flow_name: str = "",
        flow_id: str = "",
        flow_data: models.FlowData | dict | None = None,
        schedule=None,
        is_schedule_active: bool | None = None,
        parameters: dict | None = None,
        tags: list[str] | None = None,
        flow_runner=None,
        description: str = "",
        catchup: bool = False,
        max_lateness: float | dt.timedelta | None = None,
        id: str = "",
    ) -> c.Deployment:
        msg = c.Deployment(id=id, name=name, flow_name=flow_name, flow_id=flow_id, description=description,
                           catchup=catchup, tags=list(tags or []))
        if flow_data is not None:
            fd = flow_data if isinstance(flow_data, dict) else flow_data.model_dump()
            msg.flow_data.CopyFrom(c.FlowData(encoding=fd.get("encoding", ""), blob=fd.get("blob", "")))
        sched = schedule_pb(schedule)
        if sched is not None:
            msg.schedule.CopyFrom(sched)
        if is_schedule_active is not None:
            msg.is_schedule_active = is_schedule_active
        msg.parameters.CopyFrom(struct(parameters))
        runner = runner_pb(flow_runner)
        if runner is not None:
            msg.flow_runner.CopyFrom(runner)
        if max_lateness is not None:
            seconds = max_lateness.total_seconds() if isinstance(max_lateness, dt.timedelta) else float(max_lateness)
            msg.max_lateness.CopyFrom(duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9)))
        return msg

    def create_deployment(self, name: str, **fields) -> tuple[models.Deployment, bool]:
        """Create, or update the deployment with the same flow and name.
        Returns (deployment, created)."""
        msg = self.deployment_message(name, **fields)
        resp = self.mutate(self.deployments.CreateDeployment, dpb.CreateDeploymentRequest(deployment=msg))
        return models.deployment_from_pb(resp.deployment), resp.created

    def get_deployment(self, deployment_id: str) -> models.Deployment:
        return models.deployment_from_pb(
            self.call(self.deployments.GetDeployment, dpb.GetDeploymentRequest(id=deployment_id))
        )

    def get_deployment_by_name(self, name: str) -> models.Deployment:
        return models.deployment_from_pb(
            self.call(self.deployments.GetDeploymentByName, dpb.GetDeploymentByNameRequest(name=name))
        )

    def list_deployments(self, *, flow_name: str = "", tags: list[str] | None = None,
                         limit: int | None = 50) -> list[models.Deployment]:
        req = dpb.ListDeploymentsRequest(flow_name=flow_name, tags=tags or [])
        return [models.deployment_from_pb(m) for m in self._pages(self.deployments.ListDeployments, req, "deployments", limit)]

    def update_deployment(self, deployment_id: str, **fields) -> models.Deployment:
        """Update only the given fields (the update mask is their names)."""
        msg = self.deployment_message(id=deployment_id, **fields)
        paths = ["flow_data" if k == "flow_data" else k for k in fields]
        req = dpb.UpdateDeploymentRequest(deployment=msg, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return models.deployment_from_pb(self.mutate(self.deployments.UpdateDeployment, req))

    def delete_deployment(self, deployment_id: str) -> None:
        self.call(self.deployments.DeleteDeployment, dpb.DeleteDeploymentRequest(id=deployment_id), idempotent=False)

    # -- flow runs ---------------------------------------------------------------

    @staticmethod
    def _state(state: str | models.State | None, name: str = "", message: str = "") -> c.State | None:
        if state is None:
            return None
        if isinstance(state, models.State):
            return c.State(type=state_type(state.type), name=state.name, message=state.message)
        return c.State(type=state_type(state), name=name, message=message)

    def create_flow_run(self, *, flow_name: str = "", flow_id: str = "", deployment_id: str = "",
                        parameters: dict | None = None, tags: list[str] | None = None, state: str | None = None,
                        expected_start_time: dt.datetime | None = None, idempotency_key: str = "",
                        name: str = "", flow_runner=None) -> models.FlowRun:
        run = c.FlowRun(flow_name=flow_name, flow_id=flow_id, deployment_id=deployment_id, name=name,
                        tags=list(tags or []), idempotency_key=idempotency_key)
        run.parameters.CopyFrom(struct(parameters))
        st = self._state(state)
        if st is not None:
            run.state.CopyFrom(st)
        if expected_start_time is not None:
            run.expected_start_time.CopyFrom(ts(expected_start_time))
        runner = runner_pb(flow_runner)
        if runner is not None:
            run.flow_runner.CopyFrom(runner)
        return models.flow_run_from_pb(self.mutate(self.flow_runs.CreateFlowRun, rpb.CreateFlowRunRequest(flow_run=run)))

    def create_flow_run_from_deployment(self, deployment: str, *, parameters: dict | None = None,
                                        tags: list[str] | None = None, expected_start_time: dt.datetime | None = None,
                                        idempotency_key: str = "", state: str | None = None,
                                        name: str = "") -> models.FlowRun:
        """`deployment` is an id or a "flow/deployment" name."""
        req = rpb.CreateFlowRunFromDeploymentRequest(tags=list(tags or []), idempotency_key=idempotency_key, name=name)
        if "/" in deployment:
            req.deployment_name = deployment
        else:
            req.deployment_id = deployment
        req.parameters.CopyFrom(struct(parameters))
        if expected_start_time is not None:
            req.expected_start_time.CopyFrom(ts(expected_start_time))
        st = self._state(state)
        if st is not None:
            req.state.CopyFrom(st)
        return models.flow_run_from_pb(self.mutate(self.flow_runs.CreateFlowRunFromDeployment, req))

    def get_flow_run(self, run_id: str) -> models.FlowRun:
        return models.flow_run_from_pb(self.call(self.flow_runs.GetFlowRun, rpb.GetFlowRunRequest(id=run_id)))

    def resolve_flow_run(self, id_or_name: str) -> models.FlowRun:
        """A run by id or by its readable name (the newest with that name)."""
        try:
            uuid.UUID(id_or_name)
        except ValueError:
            runs = self.list_flow_runs(name=id_or_name, limit=1)
            if not runs:
                raise exc.NotFoundError(f"flow run {id_or_name!r} not found") from None
            return self.get_flow_run(runs[0].id)
        return self.get_flow_run(id_or_name)

    def list_flow_runs(self, *, flow_name: str = "", flow_id: str = "", deployment_id: str = "",
                       state_types: list[str] | None = None, tags: list[str] | None = None,
                       expected_start_after: dt.datetime | None = None,
                       expected_start_before: dt.datetime | None = None, name: str = "",
                       newest_first: bool = True, limit: int | None = 50) -> list[models.FlowRun]:
        req = rpb.ListFlowRunsRequest(
            flow_name=flow_name, flow_id=flow_id, deployment_id=deployment_id,
            state_types=[state_type(s) for s in state_types or []], tags=tags or [], name=name,
            order_by="expected_start_time desc" if newest_first else "expected_start_time",
        )
        if expected_start_after:
            req.expected_start_after.CopyFrom(ts(expected_start_after))
        if expected_start_before:
            req.expected_start_before.CopyFrom(ts(expected_start_before))
        return [models.flow_run_from_pb(m) for m in self._pages(self.flow_runs.ListFlowRuns, req, "flow_runs", limit)]

    def set_flow_run_state(self, run_id: str, state: str, *, name: str = "", message: str = "",
                           force: bool = False, fencing_token: int = 0) -> models.FlowRun:
        req = rpb.SetFlowRunStateRequest(flow_run_id=run_id, state=self._state(state, name, message),
                                         force=force, fencing_token=fencing_token)
        return models.flow_run_from_pb(self.mutate(self.flow_runs.SetFlowRunState, req))

    def cancel_flow_run(self, run_id: str) -> models.FlowRun:
        return models.flow_run_from_pb(self.mutate(self.flow_runs.CancelFlowRun, rpb.CancelFlowRunRequest(id=run_id)))

    def delete_flow_run(self, run_id: str) -> None:
        self.call(self.flow_runs.DeleteFlowRun, rpb.DeleteFlowRunRequest(id=run_id), idempotent=False)

    # -- logs --------------------------------------------------------------------

    def create_logs(self, records: list[models.LogRecord | dict]) -> int:
        msgs = []
        for r in records:
            r = r if isinstance(r, models.LogRecord) else models.LogRecord(**r)
            msgs.append(c.LogRecord(flow_run_id=r.flow_run_id, timestamp=ts(r.timestamp), level=r.level,
                                    logger_name=r.logger_name, message=r.message))
        return self.mutate(self.logs.CreateLogs, lpb.CreateLogsRequest(logs=msgs)).created_count

    def list_logs(self, run_id: str, *, min_level: int = 0, limit: int | None = None) -> list[models.LogRecord]:
        req = lpb.ListLogsRequest(flow_run_id=run_id, min_level=min_level)
        return [models.log_from_pb(m) for m in self._pages(self.logs.ListLogs, req, "logs", limit)]


    # -- storage blocks ------------------------------------------------------------

    @property
    def storage(self):
        if getattr(self, "_storage_stub", None) is None:
            from flowdeck.v1 import storage_service_pb2_grpc as sgrpc

            self._storage_stub = sgrpc.StorageServiceStub(self.channel)
        return self._storage_stub

    def create_storage_block(self, block_type, config: dict | None = None, *,
                             is_default: bool = False) -> models.StorageBlock:
        """Register a block: a type and config, or a block instance
        (`flowdeck.blocks.storage`). An equal type+config returns the existing block.
        The result's secrets are masked."""
        from flowdeck.v1 import storage_service_pb2 as spb

        if not isinstance(block_type, str):
            block_type, config = block_type.block_type, block_type.config(include_secrets=True)
        block = c.StorageBlock(type=block_type, config=struct(config), is_default=is_default)
        return models.storage_block_from_pb(
            self.mutate(self.storage.CreateStorageBlock, spb.CreateStorageBlockRequest(storage_block=block))
        )

    def get_storage_block(self, block_id: str) -> models.StorageBlock:
        from flowdeck.v1 import storage_service_pb2 as spb

        return models.storage_block_from_pb(
            self.call(self.storage.GetStorageBlock, spb.GetStorageBlockRequest(id=block_id))
        )

    def list_storage_blocks(self, limit: int | None = 50) -> list[models.StorageBlock]:
        from flowdeck.v1 import storage_service_pb2 as spb

        req = spb.ListStorageBlocksRequest()
        return [models.storage_block_from_pb(m)
                for m in self._pages(self.storage.ListStorageBlocks, req, "storage_blocks", limit)]

    def delete_storage_block(self, block_id: str) -> None:
        from flowdeck.v1 import storage_service_pb2 as spb

        self.call(self.storage.DeleteStorageBlock, spb.DeleteStorageBlockRequest(id=block_id), idempotent=False)

    def set_default_storage_block(self, block_id: str) -> models.StorageBlock:
        from flowdeck.v1 import storage_service_pb2 as spb

        return models.storage_block_from_pb(
            self.mutate(self.storage.SetDefaultStorageBlock, spb.SetDefaultStorageBlockRequest(id=block_id))
        )

    def get_default_storage_block(self) -> models.StorageBlock | None:
        """The server's default block, or None when none is set."""
        from flowdeck.v1 import storage_service_pb2 as spb

        try:
            return models.storage_block_from_pb(
                self.call(self.storage.GetDefaultStorageBlock, spb.GetDefaultStorageBlockRequest())
            )
        except exc.NotFoundError:
            return None

    # -- flow data -------------------------------------------------------------------

    FLOW_DATA_CHUNK = 1024 * 1024

    @property
    def flow_data(self):
        if getattr(self, "_flow_data_stub", None) is None:
            from flowdeck.v1 import flow_data_service_pb2_grpc as fdgrpc

            self._flow_data_stub = fdgrpc.FlowDataServiceStub(self.channel)
        return self._flow_data_stub

    def upload_flow_data(self, data: bytes, flow_name: str = "", filename: str = "",
                         timeout: float | None = None) -> tuple[models.FlowData, str]:
        """Store `data` on the server (content-addressed; the same bytes are kept
        once). Returns (a "blockstorage" FlowData pointing at it, its SHA-256).
        Retried on UNAVAILABLE: storing the same content twice is harmless."""
        from flowdeck.v1 import flow_data_service_pb2 as fdpb

        data = bytes(data)
        size = self.FLOW_DATA_CHUNK

        def requests():
            yield fdpb.UploadFlowDataRequest(
                metadata=fdpb.FlowDataMetadata(flow_name=flow_name, filename=filename, size=len(data))
            )
            for i in range(0, len(data), size):
                yield fdpb.UploadFlowDataRequest(chunk=data[i:i + size])

        budget = timeout or max(self.timeout, 30.0 + len(data) / (1024 * 1024))
        resp = self.call(lambda _req, timeout: self.flow_data.UploadFlowData(requests(), timeout=timeout),
                         None, timeout=budget)
        return models.FlowData(encoding=resp.flow_data.encoding, blob=resp.flow_data.blob), resp.sha256

    def download_flow_data(self, sha256: str, timeout: float | None = None) -> bytes:
        """The bytes stored under `sha256`, checked against it."""
        import hashlib

        from flowdeck.v1 import flow_data_service_pb2 as fdpb

        def fetch(req, timeout):
            return b"".join(m.chunk for m in self.flow_data.DownloadFlowData(req, timeout=timeout))

        data = self.call(fetch, fdpb.DownloadFlowDataRequest(sha256=sha256),
                         timeout=timeout or max(self.timeout, 60.0))
        if hashlib.sha256(data).hexdigest() != sha256.lower():
            raise exc.ServerError(f"flow data {sha256} arrived corrupt (hash mismatch)")
        return data

    # -- work queues -------------------------------------------------------------------

    @property
    def work_queues(self):
        if getattr(self, "_work_queue_stub", None) is None:
            from flowdeck.v1 import work_queue_service_pb2_grpc as wqgrpc

            self._work_queue_stub = wqgrpc.WorkQueueServiceStub(self.channel)
        return self._work_queue_stub

    @staticmethod
    def work_queue_message(name: str = "", *, id: str = "", description: str = "",
                           tags: list[str] | None = None, deployment_ids: list[str] | None = None,
                           flow_runner_types: list[str] | None = None, is_paused: bool = False,
                           concurrency_limit: int | None = None) -> c.WorkQueue:
        msg = c.WorkQueue(id=id, name=name, description=description, is_paused=is_paused,
                          filter=c.WorkQueueFilter(tags=list(tags or []), deployment_ids=list(deployment_ids or []),
                                                   flow_runner_types=list(flow_runner_types or [])))
        if concurrency_limit is not None:
            msg.concurrency_limit = concurrency_limit
        return msg

    def create_work_queue(self, name: str, **fields) -> models.WorkQueue:
        """Fields: description, tags, deployment_ids, flow_runner_types, is_paused,
        concurrency_limit (None: no limit)."""
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        req = wqpb.CreateWorkQueueRequest(work_queue=self.work_queue_message(name, **fields))
        return models.work_queue_from_pb(self.mutate(self.work_queues.CreateWorkQueue, req))

    def get_work_queue(self, queue_id: str) -> models.WorkQueue:
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        return models.work_queue_from_pb(self.call(self.work_queues.GetWorkQueue, wqpb.GetWorkQueueRequest(id=queue_id)))

    def get_work_queue_by_name(self, name: str) -> models.WorkQueue:
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        return models.work_queue_from_pb(
            self.call(self.work_queues.GetWorkQueueByName, wqpb.GetWorkQueueByNameRequest(name=name)))

    def list_work_queues(self, limit: int | None = 50) -> list[models.WorkQueue]:
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        req = wqpb.ListWorkQueuesRequest()
        return [models.work_queue_from_pb(m) for m in self._pages(self.work_queues.ListWorkQueues, req, "work_queues", limit)]

    def update_work_queue(self, queue_id: str, **fields) -> models.WorkQueue:
        """Update only the given fields. `tags`, `deployment_ids` and
        `flow_runner_types` replace the whole filter (pass all three to keep
        the others); `concurrency_limit=None` removes the limit."""
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        paths = []
        for k in fields:
            path = "filter" if k in ("tags", "deployment_ids", "flow_runner_types") else k
            if path not in paths:
                paths.append(path)
        if "filter" in paths:
            current = self.get_work_queue(queue_id).filter
            for k in ("tags", "deployment_ids", "flow_runner_types"):
                fields.setdefault(k, getattr(current, k))
        msg = self.work_queue_message(id=queue_id, **fields)
        req = wqpb.UpdateWorkQueueRequest(work_queue=msg, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return models.work_queue_from_pb(self.mutate(self.work_queues.UpdateWorkQueue, req))

    def delete_work_queue(self, queue_id: str) -> None:
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        self.call(self.work_queues.DeleteWorkQueue, wqpb.DeleteWorkQueueRequest(id=queue_id), idempotent=False)

    def preview_work_queue(self, queue_id: str, within_seconds: int = 3600) -> list[models.FlowRun]:
        """The runs the queue would lease that are due within the next N seconds."""
        from flowdeck.v1 import work_queue_service_pb2 as wqpb

        resp = self.call(self.work_queues.PreviewWorkQueue,
                         wqpb.PreviewWorkQueueRequest(id=queue_id, within_seconds=within_seconds))
        return [models.flow_run_from_pb(m) for m in resp.flow_runs]

    # -- schedules -------------------------------------------------------------------

    def preview_schedule(self, schedule, start: dt.datetime | None = None, count: int = 5) -> list[dt.datetime]:
        """The next `count` times `schedule` (a dict, a flowdeck.schedules object or a
        Schedule message) fires at or after `start` (default now), as aware datetimes
        in the schedule's timezone. The server validates the schedule."""
        from flowdeck.v1 import schedule_service_pb2 as spb
        from flowdeck.v1 import schedule_service_pb2_grpc as sgrpc

        req = spb.PreviewScheduleRequest(schedule=schedule_pb(schedule), count=count)
        if start is not None:
            req.start.CopyFrom(ts(start))
        resp = self.call(self.stub(sgrpc, "ScheduleService").PreviewSchedule, req)
        zone_name = getattr(req.schedule, req.schedule.WhichOneof("kind") or "interval").timezone
        out = []
        for utc, local in zip(resp.times, resp.local_times):
            if zone_name:
                from zoneinfo import ZoneInfo

                out.append(utc.ToDatetime(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(zone_name)))
            else:
                out.append(dt.datetime.fromisoformat(local))
        return out

    def list_upcoming_runs(self, deployment: str, limit: int = 50) -> list[models.FlowRun]:
        """A deployment's SCHEDULED runs, soonest first; `deployment` is an id or
        a "flow/deployment" name."""
        from flowdeck.v1 import schedule_service_pb2 as spb
        from flowdeck.v1 import schedule_service_pb2_grpc as sgrpc

        dep_id = self.get_deployment_by_name(deployment).id if "/" in deployment else deployment
        req = spb.ListUpcomingRunsRequest(deployment_id=dep_id, page_size=limit)
        resp = self.call(self.stub(sgrpc, "ScheduleService").ListUpcomingRuns, req)
        return [models.flow_run_from_pb(m) for m in resp.flow_runs]

    # -- API keys (admin scope) ---------------------------------------------------------

    @property
    def api_keys(self):
        if getattr(self, "_api_key_stub", None) is None:
            from flowdeck.v1 import api_key_service_pb2_grpc as akgrpc

            self._api_key_stub = akgrpc.ApiKeyServiceStub(self.channel)
        return self._api_key_stub

    def create_api_key(self, name: str, scope: str) -> tuple[models.ApiKey, str]:
        """A new key with `scope` (read, write, agent or admin). Returns (key info,
        the key itself); the key is shown this once and never again."""
        from flowdeck.v1 import api_key_service_pb2 as akpb

        try:
            value = akpb.ApiKeyScope.Value(f"API_KEY_SCOPE_{scope.upper()}")
        except ValueError:
            raise exc.InvalidArgumentError(
                f"invalid scope {scope!r}: must be one of read, write, agent, admin") from None
        req = akpb.CreateApiKeyRequest(api_key=akpb.ApiKey(name=name, scope=value))
        resp = self.mutate(self.api_keys.CreateApiKey, req)
        return models.api_key_from_pb(resp.api_key), resp.secret

    def list_api_keys(self, limit: int | None = 50, show_revoked: bool = False) -> list[models.ApiKey]:
        from flowdeck.v1 import api_key_service_pb2 as akpb

        req = akpb.ListApiKeysRequest(show_revoked=show_revoked)
        return [models.api_key_from_pb(m) for m in self._pages(self.api_keys.ListApiKeys, req, "api_keys", limit)]

    def revoke_api_key(self, name: str) -> models.ApiKey:
        """Revoke the key with this name (or id): refused from its next call on."""
        from flowdeck.v1 import api_key_service_pb2 as akpb

        return models.api_key_from_pb(self.mutate(self.api_keys.RevokeApiKey, akpb.RevokeApiKeyRequest(name=name)))

def api_url() -> str | None:
    return os.environ.get("FLOWDECK_API_URL") or None


def get_client(address: str | None = None, **kwargs: Any) -> FlowdeckClient:
    """A client for `address`, FLOWDECK_API_URL, or the embedded default."""
    if not (address or api_url()):
        from flowdeck.client._embedded import embedded_address

        address = embedded_address()
    return FlowdeckClient(address or api_url(), **kwargs)
