"""DeploymentService."""
from google.protobuf import empty_pb2

from flowdeck.server import deployments
from flowdeck.server.api import convert
from flowdeck.core.errors import invalid_field
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import deployment_service_pb2 as pb
from flowdeck.v1 import deployment_service_pb2_grpc as rpc

from flowdeck.server.api.base import Servicer


class DeploymentServicer(Servicer, rpc.DeploymentServiceServicer):
    async def CreateDeployment(self, request, context):
        inp = convert.deployment_in(request.deployment)

        def work(s):
            row, created = deployments.upsert(s, inp, settings=self.app.settings)
            return pb.CreateDeploymentResponse(deployment=convert.deployment_out(row), created=created)

        response = await self.mutate("CreateDeployment", request.request_id, pb.CreateDeploymentResponse, work)
        self.app.events.publish("runs")
        return response

    async def GetDeployment(self, request, context):
        dep_id = convert.uuid_str(request.id, "id")
        return await self.db.run_read_statement(
            lambda conn: convert.deployment_out(deployments.get(conn, dep_id)))

    async def GetDeploymentByName(self, request, context):
        full = request.name
        return await self.db.run_read_statement(
            lambda conn: convert.deployment_out(deployments.get_by_name(conn, full)))

    async def ListDeployments(self, request, context):
        tags = convert.tags(request.tags, "tags")

        def work(s):
            rows, token = deployments.list_(s, request.page_size, request.page_token, request.flow_name, tags,
                                            request.name_contains)
            return pb.ListDeploymentsResponse(
                deployments=[convert.deployment_out(r) for r in rows], next_page_token=token
            )

        return await self.read(work)

    async def UpdateDeployment(self, request, context):
        dep_id = convert.uuid_str(request.deployment.id, "deployment.id")
        paths = list(request.update_mask.paths)
        if not paths:
            raise invalid_field("update_mask", "", "must name at least one field")
        for p in paths:
            if p not in deployments.MUTABLE:
                raise invalid_field("update_mask.paths", p, f"must be among {', '.join(deployments.MUTABLE)}")
        inp = convert.deployment_in(request.deployment, for_create=False)
        if "name" in paths:
            inp.name = convert.name(request.deployment.name, "deployment.name")

        def work(s):
            return convert.deployment_out(deployments.update(s, dep_id, inp, paths, settings=self.app.settings))

        response = await self.mutate("UpdateDeployment", request.request_id, c.Deployment, work)
        self.app.events.publish("runs")
        return response

    async def DeleteDeployment(self, request, context):
        dep_id = convert.uuid_str(request.id, "id")

        def work(s):
            deployments.delete_(s, dep_id)
            return empty_pb2.Empty()

        return await self.mutate("DeleteDeployment", "", empty_pb2.Empty, work)
