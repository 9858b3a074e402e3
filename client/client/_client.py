"""`FlowdeckClient`: one method per RPC, pydantic models in and out.

One class with its methods grouped by resource, not a mixin per service: a
user learns the client by reading one class, and methods use each other (a
deployment name resolved to its id, a queue's filter read before an update).
The shapes are the same everywhere:

* `get_*` returns the model or raises NotFoundError;
* `list_*` takes `limit` (default 50, None: all, paged as needed) and returns a list;
* ids and names are separate parameters (`deployment_id=` or `deployment_name=`);
* create and update take keyword arguments; an update changes only the
  arguments it is given (they are its update mask).

The wire (channel, retries, request ids, paging) is `_transport`; messages
are built by `_messages` and read back by `_convert`.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from flowdeck import exceptions as exc
from flowdeck import models
from flowdeck.client import _convert as convert
from flowdeck.client import _messages as msgs
from flowdeck.client._messages import UNSET
from flowdeck.client._transport import Page, Transport
from flowdeck.v1 import api_key_service_pb2 as akpb
from flowdeck.v1 import api_key_service_pb2_grpc as akgrpc
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import deployment_service_pb2 as dpb
from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc
from flowdeck.v1 import flow_data_service_pb2 as fdpb
from flowdeck.v1 import flow_data_service_pb2_grpc as fdgrpc
from flowdeck.v1 import flow_run_service_pb2 as rpb
from flowdeck.v1 import flow_run_service_pb2_grpc as rgrpc
from flowdeck.v1 import flow_service_pb2 as fpb
from flowdeck.v1 import flow_service_pb2_grpc as fgrpc
from flowdeck.v1 import log_service_pb2 as lpb
from flowdeck.v1 import log_service_pb2_grpc as lgrpc
from flowdeck.v1 import schedule_service_pb2 as spb
from flowdeck.v1 import schedule_service_pb2_grpc as sgrpc
from flowdeck.v1 import storage_service_pb2 as stpb
from flowdeck.v1 import storage_service_pb2_grpc as stgrpc
from flowdeck.v1 import work_queue_service_pb2 as wqpb
from flowdeck.v1 import work_queue_service_pb2_grpc as wqgrpc

FLOW_DATA_CHUNK = 1024 * 1024
WORK_QUEUE_FILTER = ("tags", "deployment_ids", "flow_runner_types")


def _one_of(what: str, **named: str) -> None:
    """Exactly one of the keyword arguments is given (non-empty)."""
    if sum(1 for v in named.values() if v) != 1:
        names = " or ".join(f"{k}=" for k in named)
        raise exc.InvalidArgumentError(f"give the {what} by exactly one of {names}", field=next(iter(named)))


class FlowdeckClient:
    """A synchronous client over one gRPC channel.

    `retries` is how often a call is retried after UNAVAILABLE or
    DEADLINE_EXCEEDED (reads and mutations with a request_id; never Deletes):
    `retries=2` means up to three attempts. `timeout` is each attempt's
    deadline in seconds. TLS and the API key come from `api_key` and the
    FLOWDECK_API_* environment (see `flowdeck.channels`), unless a ready
    `channel` is given.
    """

    def __init__(self, address: str, *, timeout: float = 30.0, retries: int = 2, channel=None,
                 api_key: str | None = None):
        self._transport = Transport(address, timeout=timeout, retries=retries, channel=channel, api_key=api_key)

    @property
    def address(self) -> str:
        return self._transport.address

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "FlowdeckClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _stub(self, stub_class: type):
        return self._transport.stub(stub_class)

    # -- flows ---------------------------------------------------------------------

    def create_flow(self, name: str) -> models.Flow:
        """Get or create the flow with this name."""
        req = fpb.CreateFlowRequest(flow=c.Flow(name=name))
        return convert.flow_from_pb(self._transport.mutate(self._stub(fgrpc.FlowServiceStub).CreateFlow, req))

    def get_flow(self, flow_id: str) -> models.Flow:
        stub = self._stub(fgrpc.FlowServiceStub)
        return convert.flow_from_pb(self._transport.call(stub.GetFlow, fpb.GetFlowRequest(id=flow_id)))

    def get_flow_by_name(self, name: str) -> models.Flow:
        stub = self._stub(fgrpc.FlowServiceStub)
        return convert.flow_from_pb(self._transport.call(stub.GetFlowByName, fpb.GetFlowByNameRequest(name=name)))

    def list_flows(self, *, name_prefix: str = "", limit: int | None = 50) -> list[models.Flow]:
        req = fpb.ListFlowsRequest(name_prefix=name_prefix)
        pages = self._transport.pages(self._stub(fgrpc.FlowServiceStub).ListFlows, req, "flows", limit)
        return [convert.flow_from_pb(m) for m in pages]

    def delete_flow(self, flow_id: str) -> None:
        stub = self._stub(fgrpc.FlowServiceStub)
        self._transport.call(stub.DeleteFlow, fpb.DeleteFlowRequest(id=flow_id), idempotent=False)

    # -- deployments -----------------------------------------------------------------

    def create_deployment(
        self,
        name: str,
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
        parameter_schema: dict | None = None,
    ) -> tuple[models.Deployment, bool]:
        """Create the deployment `name` of a flow (`flow_name` or `flow_id`), or
        update the one with the same flow and name. Returns (deployment, created).

        `schedule`: a `flowdeck.schedules` object or its dict; `flow_runner`: a
        `flowdeck.flow_runners` object or {"type", "config"}; `max_lateness` in
        seconds or a timedelta; `parameter_schema`: the JSON Schema the server
        checks runs' parameters against (`flowdeck.deployments.parameter_schema(flow)`)."""
        msg = msgs.deployment_message(
            name=name, flow_name=flow_name, flow_id=flow_id, flow_data=flow_data, schedule=schedule,
            is_schedule_active=is_schedule_active, parameters=parameters, tags=tags, flow_runner=flow_runner,
            description=description, catchup=catchup, max_lateness=max_lateness,
            parameter_schema=parameter_schema)
        stub = self._stub(dgrpc.DeploymentServiceStub)
        resp = self._transport.mutate(stub.CreateDeployment, dpb.CreateDeploymentRequest(deployment=msg))
        return convert.deployment_from_pb(resp.deployment), resp.created

    def get_deployment(self, deployment_id: str) -> models.Deployment:
        stub = self._stub(dgrpc.DeploymentServiceStub)
        return convert.deployment_from_pb(
            self._transport.call(stub.GetDeployment, dpb.GetDeploymentRequest(id=deployment_id)))

    def get_deployment_by_name(self, name: str) -> models.Deployment:
        """`name` is the full name, "flow/deployment"."""
        stub = self._stub(dgrpc.DeploymentServiceStub)
        return convert.deployment_from_pb(
            self._transport.call(stub.GetDeploymentByName, dpb.GetDeploymentByNameRequest(name=name)))

    def list_deployments(self, *, flow_name: str = "", tags: list[str] | None = None, name_contains: str = "",
                         limit: int | None = 50) -> list[models.Deployment]:
        """Deployments in "flow/deployment" order; `name_contains`: only those
        whose full name contains the text (ignoring ASCII case)."""
        req = dpb.ListDeploymentsRequest(flow_name=flow_name, tags=tags or [], name_contains=name_contains)
        stub = self._stub(dgrpc.DeploymentServiceStub)
        return [convert.deployment_from_pb(m)
                for m in self._transport.pages(stub.ListDeployments, req, "deployments", limit)]

    def update_deployment(
        self,
        deployment_id: str,
        *,
        name: str = UNSET,
        flow_data: models.FlowData | dict = UNSET,
        schedule=UNSET,
        is_schedule_active: bool = UNSET,
        parameters: dict = UNSET,
        tags: list[str] = UNSET,
        flow_runner=UNSET,
        description: str = UNSET,
        catchup: bool = UNSET,
        max_lateness: float | dt.timedelta | None = UNSET,
        parameter_schema: dict | None = UNSET,
    ) -> models.Deployment:
        """Change only the arguments given; `schedule=None` removes the
        schedule, `max_lateness=None` the lateness bound, `parameter_schema=None`
        the parameter checks."""
        fields = msgs.given(name=name, flow_data=flow_data, schedule=schedule,
                            is_schedule_active=is_schedule_active, parameters=parameters, tags=tags,
                            flow_runner=flow_runner, description=description, catchup=catchup,
                            max_lateness=max_lateness, parameter_schema=parameter_schema)
        req = dpb.UpdateDeploymentRequest(deployment=msgs.deployment_message(id=deployment_id, **fields),
                                          update_mask=msgs.field_mask(fields))
        stub = self._stub(dgrpc.DeploymentServiceStub)
        return convert.deployment_from_pb(self._transport.mutate(stub.UpdateDeployment, req))

    def delete_deployment(self, deployment_id: str) -> None:
        stub = self._stub(dgrpc.DeploymentServiceStub)
        self._transport.call(stub.DeleteDeployment, dpb.DeleteDeploymentRequest(id=deployment_id),
                             idempotent=False)

    # -- flow runs ---------------------------------------------------------------------

    def create_flow_run(self, *, flow_name: str = "", flow_id: str = "", deployment_id: str = "", name: str = "",
                        parameters: dict | None = None, tags: list[str] | None = None, state: str | None = None,
                        expected_start_time: dt.datetime | None = None, idempotency_key: str = "",
                        flow_runner=None) -> models.FlowRun:
        """A run of a flow (`flow_name` or `flow_id`); `state` defaults to
        SCHEDULED and `expected_start_time` to now."""
        run = msgs.flow_run_message(
            flow_name=flow_name, flow_id=flow_id, deployment_id=deployment_id, name=name, parameters=parameters,
            tags=tags, state_name=state, expected_start_time=expected_start_time, idempotency_key=idempotency_key,
            flow_runner=flow_runner)
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return convert.flow_run_from_pb(
            self._transport.mutate(stub.CreateFlowRun, rpb.CreateFlowRunRequest(flow_run=run)))

    def create_flow_run_from_deployment(self, *, deployment_id: str = "", deployment_name: str = "",
                                        name: str = "", parameters: dict | None = None,
                                        tags: list[str] | None = None, state: str | None = None,
                                        expected_start_time: dt.datetime | None = None,
                                        idempotency_key: str = "") -> models.FlowRun:
        """A run of a deployment, by `deployment_id` or by `deployment_name`
        ("flow/deployment"). `parameters` override the deployment's key by key;
        `tags` are added to its tags."""
        _one_of("deployment", deployment_id=deployment_id, deployment_name=deployment_name)
        req = rpb.CreateFlowRunFromDeploymentRequest(tags=list(tags or []), idempotency_key=idempotency_key,
                                                     name=name)
        if deployment_id:
            req.deployment_id = deployment_id
        else:
            req.deployment_name = deployment_name
        req.parameters.CopyFrom(msgs.struct(parameters))
        if expected_start_time is not None:
            req.expected_start_time.CopyFrom(msgs.timestamp(expected_start_time))
        st = msgs.state_message(state)
        if st is not None:
            req.state.CopyFrom(st)
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return convert.flow_run_from_pb(self._transport.mutate(stub.CreateFlowRunFromDeployment, req))

    def get_flow_run(self, run_id: str) -> models.FlowRun:
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return convert.flow_run_from_pb(self._transport.call(stub.GetFlowRun, rpb.GetFlowRunRequest(id=run_id)))

    def list_flow_runs(self, *, flow_name: str = "", flow_id: str = "", deployment_id: str = "", name: str = "",
                       state_types: list[str] | None = None, state_names: list[str] | None = None,
                       tags: list[str] | None = None, expected_start_after: dt.datetime | None = None,
                       expected_start_before: dt.datetime | None = None, window: str = "",
                       newest_first: bool = True, limit: int | None = 50) -> Page:
        """Runs matching every filter given, by expected start time (newest first by default).
        A run matches the states when its type is in `state_types` or its name
        ("Late", "Expired") in `state_names`. `window`: "started_or_due" (every
        run but SCHEDULED ones expected after now), "upcoming" (those), or ""
        (all). The list's `total_size` is how many match in all."""
        req = rpb.ListFlowRunsRequest(
            flow_name=flow_name, flow_id=flow_id, deployment_id=deployment_id, name=name,
            state_types=[msgs.state_type(s) for s in state_types or []], state_names=state_names or [],
            tags=tags or [], window=msgs.flow_run_window(window),
            order_by="expected_start_time desc" if newest_first else "expected_start_time",
        )
        if expected_start_after:
            req.expected_start_after.CopyFrom(msgs.timestamp(expected_start_after))
        if expected_start_before:
            req.expected_start_before.CopyFrom(msgs.timestamp(expected_start_before))
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return self._transport.counted_pages(stub.ListFlowRuns, req, "flow_runs", limit, convert.flow_run_from_pb)

    def set_flow_run_state(self, run_id: str, state: str, *, name: str = "", message: str = "",
                           force: bool = False, fencing_token: int = 0) -> models.FlowRun:
        """Move a run to `state` (a state type such as "RUNNING"); an agent's
        report carries its lease's `fencing_token`."""
        req = rpb.SetFlowRunStateRequest(flow_run_id=run_id, state=msgs.state_message(state, name, message),
                                         force=force, fencing_token=fencing_token)
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return convert.flow_run_from_pb(self._transport.mutate(stub.SetFlowRunState, req))

    def cancel_flow_run(self, run_id: str) -> models.FlowRun:
        """Cancel a run: at once if no agent holds it, else its agent stops it."""
        stub = self._stub(rgrpc.FlowRunServiceStub)
        return convert.flow_run_from_pb(
            self._transport.mutate(stub.CancelFlowRun, rpb.CancelFlowRunRequest(id=run_id)))

    def delete_flow_run(self, run_id: str) -> None:
        stub = self._stub(rgrpc.FlowRunServiceStub)
        self._transport.call(stub.DeleteFlowRun, rpb.DeleteFlowRunRequest(id=run_id), idempotent=False)

    # -- logs --------------------------------------------------------------------------

    def create_logs(self, records: list[models.LogRecord | dict]) -> int:
        """Store log records (LogRecord or its dict); returns how many were stored."""
        req = lpb.CreateLogsRequest(logs=msgs.log_messages(records))
        return self._transport.mutate(self._stub(lgrpc.LogServiceStub).CreateLogs, req).created_count

    def list_logs(self, run_id: str, *, min_level: int = 0, limit: int | None = 50) -> list[models.LogRecord]:
        """A run's log records, oldest first."""
        req = lpb.ListLogsRequest(flow_run_id=run_id, min_level=min_level)
        pages = self._transport.pages(self._stub(lgrpc.LogServiceStub).ListLogs, req, "logs", limit)
        return [convert.log_from_pb(m) for m in pages]

    # -- schedules ---------------------------------------------------------------------

    def preview_schedule(self, schedule, *, start: dt.datetime | None = None, count: int = 5) -> list[dt.datetime]:
        """The next `count` times `schedule` (a dict, a `flowdeck.schedules`
        object or a Schedule message) fires at or after `start` (default now),
        as aware datetimes in the schedule's timezone. The server validates it."""
        req = spb.PreviewScheduleRequest(schedule=msgs.schedule_message(schedule), count=count)
        if start is not None:
            req.start.CopyFrom(msgs.timestamp(start))
        resp = self._transport.call(self._stub(sgrpc.ScheduleServiceStub).PreviewSchedule, req)
        zone_name = getattr(req.schedule, req.schedule.WhichOneof("kind") or "interval").timezone
        return convert.schedule_times_from_pb(resp, zone_name)

    def list_upcoming_runs(self, *, deployment_id: str = "", deployment_name: str = "",
                           limit: int | None = 50) -> list[models.FlowRun]:
        """A deployment's SCHEDULED runs, soonest first; by `deployment_id` or
        `deployment_name` ("flow/deployment")."""
        _one_of("deployment", deployment_id=deployment_id, deployment_name=deployment_name)
        if deployment_name:
            deployment_id = self.get_deployment_by_name(deployment_name).id
        req = spb.ListUpcomingRunsRequest(deployment_id=deployment_id)
        stub = self._stub(sgrpc.ScheduleServiceStub)
        return [convert.flow_run_from_pb(m)
                for m in self._transport.pages(stub.ListUpcomingRuns, req, "flow_runs", limit)]

    # -- work queues -------------------------------------------------------------------

    def create_work_queue(self, name: str, *, description: str = "", tags: list[str] | None = None,
                          deployment_ids: list[str] | None = None, flow_runner_types: list[str] | None = None,
                          is_paused: bool = False, concurrency_limit: int | None = None) -> models.WorkQueue:
        """A queue agents lease from: runs that carry all of `tags`, belong to
        one of `deployment_ids` and use one of `flow_runner_types` (empty: any).
        `concurrency_limit` caps its runs PENDING or RUNNING at once (None: no cap)."""
        queue = msgs.work_queue_message(
            name=name, description=description, tags=tags, deployment_ids=deployment_ids,
            flow_runner_types=flow_runner_types, is_paused=is_paused, concurrency_limit=concurrency_limit)
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        return convert.work_queue_from_pb(
            self._transport.mutate(stub.CreateWorkQueue, wqpb.CreateWorkQueueRequest(work_queue=queue)))

    def get_work_queue(self, queue_id: str) -> models.WorkQueue:
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        return convert.work_queue_from_pb(
            self._transport.call(stub.GetWorkQueue, wqpb.GetWorkQueueRequest(id=queue_id)))

    def get_work_queue_by_name(self, name: str) -> models.WorkQueue:
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        return convert.work_queue_from_pb(
            self._transport.call(stub.GetWorkQueueByName, wqpb.GetWorkQueueByNameRequest(name=name)))

    def list_work_queues(self, *, limit: int | None = 50) -> list[models.WorkQueue]:
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        pages = self._transport.pages(stub.ListWorkQueues, wqpb.ListWorkQueuesRequest(), "work_queues", limit)
        return [convert.work_queue_from_pb(m) for m in pages]

    def update_work_queue(self, queue_id: str, *, name: str = UNSET, description: str = UNSET,
                          tags: list[str] = UNSET, deployment_ids: list[str] = UNSET,
                          flow_runner_types: list[str] = UNSET, is_paused: bool = UNSET,
                          concurrency_limit: int | None = UNSET) -> models.WorkQueue:
        """Change only the arguments given; `concurrency_limit=None` removes
        the cap. The filter parts not given keep their current values."""
        fields = msgs.given(name=name, description=description, tags=tags, deployment_ids=deployment_ids,
                            flow_runner_types=flow_runner_types, is_paused=is_paused,
                            concurrency_limit=concurrency_limit)
        paths = list(dict.fromkeys("filter" if k in WORK_QUEUE_FILTER else k for k in fields))
        if "filter" in paths:
            # The filter is one field on the wire: send the parts not given as they are.
            current = self.get_work_queue(queue_id).filter
            for part in WORK_QUEUE_FILTER:
                fields.setdefault(part, getattr(current, part))
        req = wqpb.UpdateWorkQueueRequest(work_queue=msgs.work_queue_message(id=queue_id, **fields),
                                          update_mask=msgs.field_mask(paths))
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        return convert.work_queue_from_pb(self._transport.mutate(stub.UpdateWorkQueue, req))

    def delete_work_queue(self, queue_id: str) -> None:
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        self._transport.call(stub.DeleteWorkQueue, wqpb.DeleteWorkQueueRequest(id=queue_id), idempotent=False)

    def preview_work_queue(self, queue_id: str, *, within_seconds: int = 3600) -> list[models.FlowRun]:
        """The runs the queue would lease that are due within the next `within_seconds`."""
        stub = self._stub(wqgrpc.WorkQueueServiceStub)
        resp = self._transport.call(stub.PreviewWorkQueue,
                                    wqpb.PreviewWorkQueueRequest(id=queue_id, within_seconds=within_seconds))
        return [convert.flow_run_from_pb(m) for m in resp.flow_runs]

    # -- storage blocks ----------------------------------------------------------------

    def create_storage_block(self, block=None, *, block_type: str = "", config: dict | None = None,
                             is_default: bool = False) -> models.StorageBlock:
        """Register a block: a block object (`flowdeck.blocks.storage`), or a
        `block_type` and its `config`. An equal type and config is the block
        already registered. The result's secrets are masked."""
        if (block is None) == (not block_type):
            raise exc.InvalidArgumentError("give a storage block object or a block_type (with its config)",
                                           field="block_type")
        if block is not None:
            block_type, config = block.block_type, block.config(include_secrets=True)
        req = stpb.CreateStorageBlockRequest(storage_block=msgs.storage_block_message(block_type, config, is_default))
        stub = self._stub(stgrpc.StorageServiceStub)
        return convert.storage_block_from_pb(self._transport.mutate(stub.CreateStorageBlock, req))

    def get_storage_block(self, block_id: str) -> models.StorageBlock:
        """A block, secrets masked."""
        stub = self._stub(stgrpc.StorageServiceStub)
        return convert.storage_block_from_pb(
            self._transport.call(stub.GetStorageBlock, stpb.GetStorageBlockRequest(id=block_id)))

    def list_storage_blocks(self, *, limit: int | None = 50) -> list[models.StorageBlock]:
        stub = self._stub(stgrpc.StorageServiceStub)
        pages = self._transport.pages(stub.ListStorageBlocks, stpb.ListStorageBlocksRequest(), "storage_blocks",
                                      limit)
        return [convert.storage_block_from_pb(m) for m in pages]

    def delete_storage_block(self, block_id: str) -> None:
        """Delete a block no deployment uses (else FailedPreconditionError)."""
        stub = self._stub(stgrpc.StorageServiceStub)
        self._transport.call(stub.DeleteStorageBlock, stpb.DeleteStorageBlockRequest(id=block_id), idempotent=False)

    def set_default_storage_block(self, block_id: str) -> models.StorageBlock:
        """Make a block the one new deployments use when their spec names none."""
        stub = self._stub(stgrpc.StorageServiceStub)
        return convert.storage_block_from_pb(
            self._transport.mutate(stub.SetDefaultStorageBlock, stpb.SetDefaultStorageBlockRequest(id=block_id)))

    def get_default_storage_block(self) -> models.StorageBlock:
        """The server's default block; NotFoundError when none is set."""
        stub = self._stub(stgrpc.StorageServiceStub)
        return convert.storage_block_from_pb(
            self._transport.call(stub.GetDefaultStorageBlock, stpb.GetDefaultStorageBlockRequest()))

    # -- flow data ---------------------------------------------------------------------

    def upload_flow_data(self, data: bytes, *, flow_name: str = "", filename: str = "", storage_block_id: str = "",
                         timeout: float | None = None) -> tuple[models.FlowData, str]:
        """Store `data` on the server, content-addressed (the same bytes are
        kept once), or with `storage_block_id` in that registered block
        ("s3" or "server"), written by the server with the block's stored
        credentials. Returns (a "blockstorage" FlowData pointing at it, its
        SHA-256). Retried like a read: storing the same content twice is harmless."""
        data = bytes(data)
        stub = self._stub(fdgrpc.FlowDataServiceStub)

        def upload(_request, timeout):
            requests = msgs.upload_requests(data, flow_name=flow_name, filename=filename, chunk_size=FLOW_DATA_CHUNK,
                                            storage_block_id=storage_block_id)
            return stub.UploadFlowData(requests, timeout=timeout)

        budget = timeout or max(self.timeout, 30.0 + len(data) / (1024 * 1024))
        resp = self._transport.call(upload, None, timeout=budget)
        return convert.flow_data_from_pb(resp.flow_data), resp.sha256

    def download_flow_data(self, sha256: str, *, timeout: float | None = None) -> bytes:
        """The bytes stored under `sha256`; DataLossError when they do not hash to it."""
        stub = self._stub(fdgrpc.FlowDataServiceStub)

        def download(request, timeout):
            return b"".join(m.chunk for m in stub.DownloadFlowData(request, timeout=timeout))

        data = self._transport.call(download, fdpb.DownloadFlowDataRequest(sha256=sha256),
                                    timeout=timeout or max(self.timeout, 60.0))
        if hashlib.sha256(data).hexdigest() != sha256.lower():
            raise exc.DataLossError(f"flow data {sha256} arrived corrupt (hash mismatch)")
        return data

    # -- API keys (admin scope, but for the caller's own) --------------------------------

    def get_current_api_key(self) -> models.ApiKey:
        """The key this client calls with (its name and scope; never the key
        itself). Any scope may ask; a server without --auth refuses it with
        FailedPreconditionError (reason AUTH_DISABLED)."""
        stub = self._stub(akgrpc.ApiKeyServiceStub)
        return convert.api_key_from_pb(self._transport.call(stub.GetCurrentApiKey, akpb.GetCurrentApiKeyRequest()))

    def create_api_key(self, name: str, *, scope: str) -> tuple[models.ApiKey, str]:
        """A new key with `scope` (read, write, agent or admin). Returns (key
        info, the key itself); the key is shown this once and never again."""
        req = akpb.CreateApiKeyRequest(api_key=akpb.ApiKey(name=name, scope=msgs.api_key_scope(scope)))
        resp = self._transport.mutate(self._stub(akgrpc.ApiKeyServiceStub).CreateApiKey, req)
        return convert.api_key_from_pb(resp.api_key), resp.secret

    def list_api_keys(self, *, show_revoked: bool = False, limit: int | None = 50) -> list[models.ApiKey]:
        """Keys (never the keys themselves), newest first."""
        req = akpb.ListApiKeysRequest(show_revoked=show_revoked)
        pages = self._transport.pages(self._stub(akgrpc.ApiKeyServiceStub).ListApiKeys, req, "api_keys", limit)
        return [convert.api_key_from_pb(m) for m in pages]

    def revoke_api_key(self, name: str, *, force: bool = False) -> models.ApiKey:
        """Revoke a key: refused from its next call on. The server takes the
        key's name or its public id in this one field. The last active admin
        key is revoked only with `force` (else FailedPreconditionError)."""
        stub = self._stub(akgrpc.ApiKeyServiceStub)
        req = akpb.RevokeApiKeyRequest(name=name, force=force)
        return convert.api_key_from_pb(self._transport.mutate(stub.RevokeApiKey, req))
