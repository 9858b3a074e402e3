"""StorageService: storage blocks, deduplicated by type and config, secrets masked."""
from google.protobuf import empty_pb2

from flowdeck.server import storage_blocks
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import PermissionDeniedError
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import storage_service_pb2 as pb
from flowdeck.v1 import storage_service_pb2_grpc as rpc


class StorageServicer(Servicer, rpc.StorageServiceServicer):
    async def CreateStorageBlock(self, request, context):
        block = request.storage_block
        block_type = block.type
        config = convert.struct_to_dict(block.config, "storage_block.config")
        # Validate before the transaction (and so before anything is logged).
        storage_blocks.normalize(block_type, config)
        make_default = block.is_default

        def work(s):
            row = storage_blocks.create(s, block_type, config, make_default=make_default)
            return convert.storage_block_out(row)

        return await self.mutate("CreateStorageBlock", request.request_id, c.StorageBlock, work)

    async def GetStorageBlock(self, request, context):
        block_id = convert.uuid_str(request.id, "id")
        if request.reveal_secrets:
            raise PermissionDeniedError(
                "storage block secrets are never returned by GetStorageBlock; an agent receives them "
                "only in the lease of a run that needs them",
                reason="SECRETS_NOT_REVEALED",
            )
        return await self.read(lambda s: convert.storage_block_out(storage_blocks.get(s, block_id)))

    async def ListStorageBlocks(self, request, context):
        def work(s):
            rows, token = storage_blocks.list_(s, request.page_size, request.page_token)
            return pb.ListStorageBlocksResponse(
                storage_blocks=[convert.storage_block_out(r) for r in rows], next_page_token=token
            )

        return await self.read(work)

    async def DeleteStorageBlock(self, request, context):
        block_id = convert.uuid_str(request.id, "id")

        def work(s):
            storage_blocks.delete_(s, block_id)
            return empty_pb2.Empty()

        return await self.mutate("DeleteStorageBlock", "", empty_pb2.Empty, work)

    async def SetDefaultStorageBlock(self, request, context):
        block_id = convert.uuid_str(request.id, "id")
        return await self.mutate(
            "SetDefaultStorageBlock", request.request_id, c.StorageBlock,
            lambda s: convert.storage_block_out(storage_blocks.set_default(s, block_id)),
        )

    async def GetDefaultStorageBlock(self, request, context):
        return await self.read(lambda s: convert.storage_block_out(storage_blocks.get_default(s)))
