"""Work queues: filters, concurrency limit, paused, runs waiting, the agents
holding runs; pause and resume."""
from __future__ import annotations

import asyncio

from google.protobuf import field_mask_pb2
from starlette.requests import Request

from flowdeck.server.dashboard.security import checked_form
from flowdeck.server.dashboard.views.common import back, caller, page, request_id
from flowdeck.server.dashboard.views.overview import ACTIVE, agents_from
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_run_service_pb2 as rpb
from flowdeck.v1 import work_queue_service_pb2 as wpb

WAITING_WITHIN = 60  # "runs waiting": due within the next minute (late ones included)


async def work_queues(request: Request):
    call = caller(request)
    queues, active = await asyncio.gather(
        call(call.api.work_queues.ListWorkQueues, wpb.ListWorkQueuesRequest(page_size=1000)),
        call(call.api.flow_runs.ListFlowRuns, rpb.ListFlowRunsRequest(state_types=ACTIVE, page_size=1000)))
    queues = list(queues.work_queues)
    previews = await asyncio.gather(*(call(call.api.work_queues.PreviewWorkQueue, wpb.PreviewWorkQueueRequest(
        id=q.id, within_seconds=WAITING_WITHIN)) for q in queues))
    waiting = {q.id: len(p.flow_runs) for q, p in zip(queues, previews)}
    return page(request, "work_queues.html", "work-queues", queues=queues, waiting=waiting,
                agents=agents_from(active.flow_runs), within=WAITING_WITHIN)


async def set_paused(request: Request):
    form = await checked_form(request)
    queue_id = request.path_params["queue_id"]
    call = caller(request)
    await call(call.api.work_queues.UpdateWorkQueue, wpb.UpdateWorkQueueRequest(
        work_queue=c.WorkQueue(id=queue_id, is_paused=form.get("paused") == "true"),
        update_mask=field_mask_pb2.FieldMask(paths=["is_paused"]), request_id=request_id()))
    return back("/work-queues")
