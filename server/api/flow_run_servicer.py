"""FlowRunService."""
from google.protobuf import empty_pb2

from flowdeck.server import flow_runs, tracing
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import invalid_field
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_run_service_pb2 as pb
from flowdeck.v1 import flow_run_service_pb2_grpc as rpc

ORDERS = {"": False, "expected_start_time": False, "expected_start_time asc": False,
          "expected_start_time desc": True}


class FlowRunServicer(Servicer, rpc.FlowRunServiceServicer):
    async def CreateFlowRun(self, request, context):
        inp = convert.flow_run_in(request.flow_run)
        inp.trace_context = tracing.call_context()
        response = await self.mutate(
            "CreateFlowRun", request.request_id, c.FlowRun,
            lambda s: convert.flow_run_out(flow_runs.create(s, inp)),
        )
        self.app.events.publish("runs")
        return response

    async def CreateFlowRunFromDeployment(self, request, context):
        which = request.WhichOneof("deployment")
        if which is None:
            raise invalid_field("deployment_id", "", "deployment_id or deployment_name is required")
        dep_id = convert.uuid_str(request.deployment_id, "deployment_id") if which == "deployment_id" else ""
        dep_name = request.deployment_name if which == "deployment_name" else ""
        params = convert.struct_to_dict(request.parameters, "parameters")
        tags = convert.tags(request.tags, "tags")
        expected = convert.from_ts(request, "expected_start_time", "expected_start_time")
        state = convert.state_in(request.state, "state") if request.HasField("state") else None
        run_name = convert.name(request.name, "name") if request.name else ""
        if len(request.idempotency_key) > 300:
            raise invalid_field("idempotency_key", request.idempotency_key, "must be at most 300 characters")
        trace = tracing.call_context()

        def work(s):
            row = flow_runs.create_from_deployment(
                s, deployment_id=dep_id, deployment_name=dep_name, parameters=params, tags=tags,
                expected_start_time=expected, idempotency_key=request.idempotency_key or None,
                state=state, name=run_name, trace_context=trace,
            )
            return convert.flow_run_out(row)

        response = await self.mutate("CreateFlowRunFromDeployment", request.request_id, c.FlowRun, work)
        self.app.events.publish("runs")
        return response

    async def GetFlowRun(self, request, context):
        run_id = convert.uuid_str(request.id, "id")
        return await self.read(lambda s: convert.flow_run_out(flow_runs.get(s, run_id, history=True)))

    async def ListFlowRuns(self, request, context):
        if request.order_by not in ORDERS:
            raise invalid_field("order_by", request.order_by, "must be 'expected_start_time' or 'expected_start_time desc'")
        f = flow_runs.RunFilter(
            flow_id=convert.uuid_str(request.flow_id, "flow_id", required=False),
            flow_name=request.flow_name,
            deployment_id=convert.uuid_str(request.deployment_id, "deployment_id", required=False),
            state_types=[convert.state_type_name(t, f"state_types[{i}]") for i, t in enumerate(request.state_types)],
            tags=convert.tags(request.tags, "tags"),
            expected_start_after=convert.from_ts(request, "expected_start_after", "expected_start_after"),
            expected_start_before=convert.from_ts(request, "expected_start_before", "expected_start_before"),
            name=request.name,
            descending=ORDERS[request.order_by],
            state_names=convert.tags(request.state_names, "state_names"),
            window=convert.enum_name(pb.FlowRunWindow, request.window, "window", "FLOW_RUN_WINDOW_"),
        )

        def work(s):
            rows, token = flow_runs.list_(s, f, request.page_size, request.page_token)
            total = flow_runs.total_size(s, f, rows, token, request.page_token)
            return pb.ListFlowRunsResponse(flow_runs=[convert.flow_run_out(r) for r in rows], next_page_token=token,
                                           total_size=total)

        return await self.read(work)

    async def SetFlowRunState(self, request, context):
        run_id = convert.uuid_str(request.flow_run_id, "flow_run_id")
        if not request.HasField("state"):
            raise invalid_field("state", "", "is required")
        state = convert.state_in(request.state, "state")
        if request.fencing_token < 0:
            raise invalid_field("fencing_token", request.fencing_token, "must not be negative")

        def work(s):
            row = flow_runs.set_state(s, run_id, state, force=request.force, fencing_token=request.fencing_token)
            return convert.flow_run_out(row)

        response = await self.mutate("SetFlowRunState", request.request_id, c.FlowRun, work)
        self.app.events.publish("runs")
        return response

    async def CancelFlowRun(self, request, context):
        run_id = convert.uuid_str(request.id, "id")
        response = await self.mutate(
            "CancelFlowRun", request.request_id, c.FlowRun,
            lambda s: convert.flow_run_out(flow_runs.cancel(s, run_id)),
        )
        self.app.events.publish("cancel")
        self.app.events.publish("runs")
        return response

    async def DeleteFlowRun(self, request, context):
        run_id = convert.uuid_str(request.id, "id")

        def work(s):
            flow_runs.delete_(s, run_id)
            return empty_pb2.Empty()

        return await self.mutate("DeleteFlowRun", "", empty_pb2.Empty, work)
