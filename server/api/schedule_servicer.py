"""ScheduleService: schedule previews and a deployment's upcoming runs."""
from __future__ import annotations

from sqlalchemy import select

from flowdeck.server import deployments, pagination
from flowdeck.core import states
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import InvalidArgumentError, invalid_field
from flowdeck.server.models import FlowRow, FlowRunRow, utcnow
from flowdeck.v1 import schedule_service_pb2 as pb
from flowdeck.v1 import schedule_service_pb2_grpc as rpc

DEFAULT_COUNT = 5
MAX_COUNT = 1000


def schedule_from_request(msg, path: str = "schedule"):
    """The request's schedule, validated; InvalidSchedule becomes INVALID_ARGUMENT
    naming the field (``schedule.cron.timezone``) and the bad value."""
    from flowdeck.core.schedules import InvalidSchedule, schedule_from_proto

    if not msg.HasField("schedule") or msg.schedule.WhichOneof("kind") is None:
        raise invalid_field(path, None, "is required: set one of interval, cron, rrule")
    try:
        return schedule_from_proto(msg.schedule)
    except InvalidSchedule as e:
        raise convert.schedule_error(e, path) from None


class ScheduleServicer(Servicer, rpc.ScheduleServiceServicer):
    async def PreviewSchedule(self, request, context):
        sched = schedule_from_request(request)
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
        size = pagination.page_size(request.page_size)

        def work(s):
            deployments.get(s, dep_id)  # NOT_FOUND for an unknown deployment
            rows = s.execute(
                select(FlowRunRow, FlowRow.name)
                .join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
                .where(FlowRunRow.deployment_id == dep_id, FlowRunRow.state_type == states.SCHEDULED)
                .order_by(FlowRunRow.expected_start_time, FlowRunRow.id)
                .limit(size)
            ).all()
            out = []
            for row, flow_name in rows:
                row.flow_name = flow_name
                out.append(convert.flow_run_out(row))
            return pb.ListUpcomingRunsResponse(flow_runs=out)

        return await self.read(work)
