"""ApiKeyService: the caller's own key, create (the secret is returned once), list, revoke."""
from __future__ import annotations

import logging

from flowdeck.server import api_keys
from flowdeck.server.api import convert
from flowdeck.server.api.security import current_principal
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import AlreadyExistsError, FailedPreconditionError
from flowdeck.v1 import api_key_service_pb2 as pb
from flowdeck.v1 import api_key_service_pb2_grpc as rpc

log = logging.getLogger("flowdeck.server.auth")


class ApiKeyServicer(Servicer, rpc.ApiKeyServiceServicer):
    async def GetCurrentApiKey(self, request, context):
        caller = current_principal.get()
        if caller is None:
            raise FailedPreconditionError(
                "this server checks no API keys (it was started without --auth): a call has no key to describe",
                reason="AUTH_DISABLED")
        return await self.read(lambda s: convert.api_key_out(api_keys.get(s, caller.key_id)))

    async def CreateApiKey(self, request, context):
        name = api_keys.check_name(request.api_key.name, "api_key.name")
        scope = convert.api_key_scope_in(request.api_key.scope, "api_key.scope")
        caller = current_principal.get()
        created_by = caller.name if caller is not None else "unauthenticated (auth off)"
        made: list[str] = []

        def work(s):
            row, key = api_keys.create(s, name, scope, created_by=created_by)
            made.append(key)
            # The request log keeps this response for request_id replays: never the secret.
            return pb.CreateApiKeyResponse(api_key=convert.api_key_out(row))

        response = await self.mutate("CreateApiKey", request.request_id, pb.CreateApiKeyResponse, work)
        if not made:
            raise AlreadyExistsError(
                f"API key {response.api_key.name!r} was made by an earlier request with this request_id; "
                "its secret was shown only then (revoke it and create another if it was lost)",
                reason="API_KEY_SECRET_SHOWN_ONCE", name=response.api_key.name,
            )
        log.info("API key %r (scope %s, id %s) created by %s", name, scope, response.api_key.id, created_by)
        out = pb.CreateApiKeyResponse()
        out.CopyFrom(response)
        out.secret = made[0]
        return out

    async def ListApiKeys(self, request, context):
        def work(s):
            rows, token = api_keys.list_(s, request.page_size, request.page_token, request.show_revoked)
            return pb.ListApiKeysResponse(api_keys=[convert.api_key_out(r) for r in rows], next_page_token=token)

        return await self.read(work)

    async def RevokeApiKey(self, request, context):
        name = request.name

        def work(s):
            return convert.api_key_out(api_keys.revoke(s, name, force=request.force))

        response = await self.mutate("RevokeApiKey", request.request_id, pb.ApiKey, work)
        self.app.security.revoked(response.id)
        caller = current_principal.get()
        log.info("API key %r (id %s) revoked by %s", response.name, response.id,
                 caller.name if caller is not None else "unauthenticated (auth off)")
        return response
