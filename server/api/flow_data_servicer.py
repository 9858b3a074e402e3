"""FlowDataService: flow code kept by the server, content-addressed by SHA-256,
or written by the server into a registered block with its stored credentials."""
import asyncio
import logging

from flowdeck.server import flow_data_store as store
from flowdeck.server import storage_writes
from flowdeck.server.api import convert
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
        target_id = convert.uuid_str(meta.storage_block_id, "metadata.storage_block_id", required=False)
        block_type, config = ("server", {})
        if target_id:
            block_type, config = await self.read(lambda s: storage_writes.target(s, target_id))
        if block_type == "s3":
            # Off the database's threads: a bucket may be slow.
            created = await asyncio.to_thread(storage_writes.write_s3, config, data, sha256)
            block_id = target_id
        else:
            created, block_id = await self.db.run_write(
                lambda s: store.store_in_server_block(s, data, sha256, target_id))
        log.info("flow data %s (%d bytes) %s in %s storage", sha256[:12], len(data),
                 "stored" if created else "already stored", block_type)
        blob = store.flow_data_blob(block_id, sha256, meta.flow_name, meta.filename, block_type=block_type,
                                    block_config=storage_writes.public_config(config))
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
