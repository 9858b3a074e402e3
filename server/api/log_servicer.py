"""LogService."""
from flowdeck.server import logs
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import invalid_field
from flowdeck.v1 import log_service_pb2 as pb
from flowdeck.v1 import log_service_pb2_grpc as rpc

MAX_BATCH = 10_000
MAX_MESSAGE = 1_000_000


class LogServicer(Servicer, rpc.LogServiceServicer):
    async def CreateLogs(self, request, context):
        if len(request.logs) > MAX_BATCH:
            raise invalid_field("logs", len(request.logs), f"must hold at most {MAX_BATCH} records")
        records = []
        for i, rec in enumerate(request.logs):
            path = f"logs[{i}]"
            run_id = convert.uuid_str(rec.flow_run_id, f"{path}.flow_run_id")
            when = convert.from_ts(rec, "timestamp", f"{path}.timestamp")
            if when is None:
                raise invalid_field(f"{path}.timestamp", "", "is required")
            if len(rec.message) > MAX_MESSAGE:
                raise invalid_field(f"{path}.message", rec.message[:50], f"must be at most {MAX_MESSAGE} characters")
            records.append(logs.LogInput(run_id, when, rec.level, rec.logger_name[:200], rec.message))

        def work(s):
            return pb.CreateLogsResponse(created_count=logs.create_many(s, records))

        return await self.mutate("CreateLogs", request.request_id, pb.CreateLogsResponse, work)

    async def ListLogs(self, request, context):
        run_id = convert.uuid_str(request.flow_run_id, "flow_run_id")

        def work(s):
            rows, token = logs.list_(s, run_id, request.page_size, request.page_token, request.min_level)
            return pb.ListLogsResponse(logs=[convert.log_out(r) for r in rows], next_page_token=token)

        return await self.read(work)
