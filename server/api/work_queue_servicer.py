"""WorkQueueService."""
from __future__ import annotations

from google.protobuf import empty_pb2

from flowdeck.server import work_queues
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import InvalidArgumentError, invalid_field
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import work_queue_service_pb2 as pb
from flowdeck.v1 import work_queue_service_pb2_grpc as rpc

MAX_DESCRIPTION = 10_000
MAX_PREVIEW_SECONDS = 366 * 86400


def work_queue_in(msg: c.WorkQueue, path: str = "work_queue", *, for_create: bool = True,
                  paths: list[str] | None = None) -> work_queues.WorkQueueInput:
    paths = list(work_queues.MUTABLE) if paths is None else paths
    inp = work_queues.WorkQueueInput()
    if for_create or "name" in paths:
        inp.name = convert.name(msg.name, f"{path}.name")
    if len(msg.description) > MAX_DESCRIPTION:
        raise invalid_field(f"{path}.description", msg.description,
                              f"must be at most {MAX_DESCRIPTION} characters")
    inp.description = msg.description
    inp.tags = convert.tags(msg.filter.tags, f"{path}.filter.tags")
    ids = []
    for i, d in enumerate(msg.filter.deployment_ids):
        d = convert.uuid_str(d, f"{path}.filter.deployment_ids[{i}]")
        if d not in ids:
            ids.append(d)
    inp.deployment_ids = ids
    inp.flow_runner_types = list(dict.fromkeys(msg.filter.flow_runner_types))
    inp.is_paused = msg.is_paused
    inp.concurrency_limit = msg.concurrency_limit if msg.HasField("concurrency_limit") else None
    return inp


def work_queue_out(row, counts: work_queues.RunCounts = work_queues.NO_RUNS) -> c.WorkQueue:
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
        created=convert.ts(row.created),
        updated=convert.ts(row.updated),
        late_runs=counts.late,
        running_runs=counts.running,
    )
    if row.concurrency_limit is not None:
        msg.concurrency_limit = row.concurrency_limit
    return msg


def counted(s, row) -> c.WorkQueue:
    """One queue with its late and running counts."""
    return work_queue_out(row, work_queues.run_counts(s, [row])[row.id])


class WorkQueueServicer(Servicer, rpc.WorkQueueServiceServicer):
    async def CreateWorkQueue(self, request, context):
        inp = work_queue_in(request.work_queue)
        response = await self.mutate(
            "CreateWorkQueue", request.request_id, c.WorkQueue,
            lambda s: counted(s, work_queues.create(s, inp)),
        )
        self.app.events.publish("runs")
        return response

    async def GetWorkQueue(self, request, context):
        qid = convert.uuid_str(request.id, "id")
        return await self.read(lambda s: counted(s, work_queues.get(s, qid)))

    async def GetWorkQueueByName(self, request, context):
        name = convert.name(request.name, "name")
        return await self.read(lambda s: counted(s, work_queues.get_by_name(s, name)))

    async def ListWorkQueues(self, request, context):
        def work(s):
            rows, token = work_queues.list_(s, request.page_size, request.page_token)
            counts = work_queues.run_counts(s, rows)
            return pb.ListWorkQueuesResponse(work_queues=[work_queue_out(r, counts[r.id]) for r in rows],
                                             next_page_token=token)

        return await self.read(work)

    async def UpdateWorkQueue(self, request, context):
        qid = convert.uuid_str(request.work_queue.id, "work_queue.id")
        paths = list(dict.fromkeys(request.update_mask.paths))
        if not paths:
            raise invalid_field("update_mask", "", "must name at least one field")
        for p in paths:
            if p not in work_queues.MUTABLE:
                raise invalid_field("update_mask.paths", p, f"must be among {', '.join(work_queues.MUTABLE)}")
        inp = work_queue_in(request.work_queue, for_create=False, paths=paths)
        response = await self.mutate(
            "UpdateWorkQueue", request.request_id, c.WorkQueue,
            lambda s: counted(s, work_queues.update(s, qid, inp, paths)),
        )
        # Resuming a queue or raising its limit frees runs to lease at once.
        self.app.events.publish("runs")
        return response

    async def DeleteWorkQueue(self, request, context):
        qid = convert.uuid_str(request.id, "id")

        def work(s):
            work_queues.delete_(s, qid)
            return empty_pb2.Empty()

        return await self.mutate("DeleteWorkQueue", "", empty_pb2.Empty, work)

    async def PreviewWorkQueue(self, request, context):
        qid = convert.uuid_str(request.id, "id")
        within = request.within_seconds or 3600
        if within < 0 or within > MAX_PREVIEW_SECONDS:
            raise invalid_field("within_seconds", request.within_seconds,
                                  f"must be between 0 and {MAX_PREVIEW_SECONDS}")

        def work(s):
            q = work_queues.get(s, qid)
            rows = work_queues.preview(s, q, within)
            return pb.PreviewWorkQueueResponse(flow_runs=[convert.flow_run_out(r) for r in rows])

        return await self.read(work)
