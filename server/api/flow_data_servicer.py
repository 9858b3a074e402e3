"""FlowDataService: flow code kept by the server, content-addressed by SHA-256."""
import logging

from flowdeck.server import flow_data_store as store
from flowdeck.server import storage_blocks
from flowdeck.server.api.base import Servicer
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import flow_data_service_pb2 as pb
from flowdeck.v1 import flow_data_service_pb2_grpc as rpc

log = logging.getLogger("flowdeck.server.flow_data")


class FlowDataServicer(Servicer, rpc.FlowDataServiceServicer):
    async def UploadFlowData(self, request_iterator, context):
        upload = store.Upload()
        # The request limits check each message as it comes (an upload over
        # the limit is refused while it streams); nothing is written until the
        # whole upload is in.
        async for request in request_iterator:
            upload.add(request)
        data, sha256 = upload.finish()
        meta = upload.metadata
        del upload

        def work(s):
            created = store.store(s, data, sha256)
            server_block = storage_blocks.find(s, "server", {})
            return created, (server_block.id if server_block is not None else None)

        created, block_id = await self.db.run_write(work)
        log.info("flow data %s (%d bytes) %s", sha256[:12], len(data), "stored" if created else "already stored")
        blob = store.flow_data_blob(block_id, sha256, meta.flow_name, meta.filename)
        return pb.UploadFlowDataResponse(
            flow_data=c.FlowData(encoding="blockstorage", blob=blob),
            sha256=sha256,
            size=len(data),
            created=created,
        )

    async def DownloadFlowData(self, request, context):
        sha256 = store.check_sha(request.sha256)
        data = await self.read(lambda s: store.load(s, sha256))
        for chunk in store.chunks(data):
            yield pb.DownloadFlowDataResponse(chunk=chunk)
