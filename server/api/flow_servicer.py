"""FlowService."""
from google.protobuf import empty_pb2

from flowdeck.server import flows
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_service_pb2 as pb
from flowdeck.v1 import flow_service_pb2_grpc as rpc


class FlowServicer(Servicer, rpc.FlowServiceServicer):
    async def CreateFlow(self, request, context):
        flow_name = convert.name(request.flow.name, "flow.name")
        return await self.mutate(
            "CreateFlow", request.request_id, c.Flow,
            lambda s: convert.flow_out(flows.get_or_create(s, flow_name)),
        )

    async def GetFlow(self, request, context):
        flow_id = convert.uuid_str(request.id, "id")
        return await self.read(lambda s: convert.flow_out(flows.get(s, flow_id)))

    async def GetFlowByName(self, request, context):
        flow_name = convert.name(request.name, "name")
        return await self.read(lambda s: convert.flow_out(flows.get_by_name(s, flow_name)))

    async def ListFlows(self, request, context):
        def work(s):
            rows, token = flows.list_(s, request.page_size, request.page_token, request.name_prefix)
            return pb.ListFlowsResponse(flows=[convert.flow_out(r) for r in rows], next_page_token=token)

        return await self.read(work)

    async def DeleteFlow(self, request, context):
        flow_id = convert.uuid_str(request.id, "id")

        def work(s):
            flows.delete_(s, flow_id)
            return empty_pb2.Empty()

        return await self.mutate("DeleteFlow", "", empty_pb2.Empty, work)
