"""ScheduleService: schedule previews and a deployment's upcoming runs."""
from __future__ import annotations

from flowdeck.core.errors import invalid_field
from flowdeck.server import flow_runs
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.server.models import utcnow
from flowdeck.v1 import schedule_service_pb2 as pb
from flowdeck.v1 import schedule_service_pb2_grpc as rpc

DEFAULT_COUNT = 5
MAX_COUNT = 1000


class ScheduleServicer(Servicer, rpc.ScheduleServiceServicer):
    async def PreviewSchedule(self, request, context):
        sched = convert.schedule_in(request, "schedule", required=True)
        count = request.count
        if count == 0:
            count = DEFAULT_COUNT
        if not 1 <= count <= MAX_COUNT:
            raise invalid_field("count", request.count, f"must be between 1 and {MAX_COUNT} (0 means {DEFAULT_COUNT})")
        start = convert.from_ts(request, "start", "start") or utcnow()

        def work():
            times = sched.next_times(start, count=count)
            return pb.PreviewScheduleResponse(
                times=[convert.ts(t) for t in times],
                local_times=[t.isoformat() for t in times],
            )

        # Off the event loop: a thousand cron times take a moment.
        return await self.db.run(work)

    async def ListUpcomingRuns(self, request, context):
        dep_id = convert.uuid_str(request.deployment_id, "deployment_id")

        def work(s):
            rows, token = flow_runs.upcoming(s, dep_id, request.page_size, request.page_token)
            return pb.ListUpcomingRunsResponse(flow_runs=[convert.flow_run_out(r) for r in rows],
                                               next_page_token=token)

        return await self.read(work)
