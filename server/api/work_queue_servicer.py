"""WorkQueueService."""
from __future__ import annotations

from google.protobuf import empty_pb2

from flowdeck.server import work_queues
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import invalid_field
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import work_queue_service_pb2 as pb
from flowdeck.v1 import work_queue_service_pb2_grpc as rpc

MAX_PREVIEW_SECONDS = 366 * 86400


def counted(s, row) -> c.WorkQueue:
    """One queue with its late and running counts."""
    return convert.work_queue_out(row, work_queues.run_counts(s, [row])[row.id])


class WorkQueueServicer(Servicer, rpc.WorkQueueServiceServicer):
    async def CreateWorkQueue(self, request, context):
        inp = convert.work_queue_in(request.work_queue)
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
            return pb.ListWorkQueuesResponse(work_queues=[convert.work_queue_out(r, counts[r.id]) for r in rows],
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
        inp = convert.work_queue_in(request.work_queue, for_create=False, paths=paths)
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
            rows, truncated = work_queues.preview(s, q, within)
            return pb.PreviewWorkQueueResponse(flow_runs=[convert.flow_run_out(r) for r in rows], truncated=truncated)

        return await self.read(work)
