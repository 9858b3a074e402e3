"""Storage blocks (secrets masked) and, for an admin key, API keys (create
shows the key once; revoke)."""
from __future__ import annotations

import re

from flowdeck.core.structs import struct_dict
from starlette.requests import Request

from flowdeck.server.dashboard.api import ApiError
from flowdeck.server.dashboard.security import checked_form
from flowdeck.server.dashboard.views.common import back, caller, page, request_id
from flowdeck.v1 import api_key_service_pb2 as kpb
from flowdeck.v1 import storage_service_pb2 as stpb

# The API masks secrets already; the dashboard masks again, so a field the
# server forgets can still never reach a page.
SECRET = re.compile(r"secret|token|password|passwd|credential|private_key|access_key", re.I)
MASK = "********"
SCOPES = ["read", "write", "agent", "admin"]


def masked(config_struct) -> dict:
    config = struct_dict(config_struct)
    return {k: (MASK if SECRET.search(k) and v not in (None, "") else v) for k, v in sorted(config.items())}


async def storage_blocks(request: Request):
    call = caller(request)
    resp = await call(call.api.storage.ListStorageBlocks, stpb.ListStorageBlocksRequest(page_size=1000))
    blocks = [(b, masked(b.config)) for b in resp.storage_blocks]
    return page(request, "storage.html", "storage", blocks=blocks)


async def _keys_page(request: Request, *, created=None, error: str = "", status_code: int = 200):
    call = caller(request)
    keys = await call(call.api.api_keys.ListApiKeys, kpb.ListApiKeysRequest(page_size=1000, show_revoked=True))
    return page(request, "api_keys.html", "api-keys", status_code=status_code, keys=list(keys.api_keys),
                created=created, error=error, scopes=SCOPES, scope_name=_scope_name)


def _scope_name(number: int) -> str:
    return kpb.ApiKeyScope.Name(number).removeprefix("API_KEY_SCOPE_").lower()


async def api_keys(request: Request):
    return await _keys_page(request)


async def create_api_key(request: Request):
    form = await checked_form(request)
    scope = str(form.get("scope", ""))
    call = caller(request)
    key = kpb.ApiKey(name=str(form.get("name", "")),
                     scope=kpb.ApiKeyScope.Value(f"API_KEY_SCOPE_{scope.upper()}") if scope in SCOPES else 0)
    try:
        resp = await call(call.api.api_keys.CreateApiKey, kpb.CreateApiKeyRequest(api_key=key,
                                                                               request_id=request_id()))
    except ApiError as e:
        if e.http_status != 400 and e.http_status != 409:
            raise
        return await _keys_page(request, error=e.message, status_code=422)
    # Shown this once, on this response only (no-store): nothing keeps it.
    return await _keys_page(request, created=resp)


async def revoke_api_key(request: Request):
    await checked_form(request)
    call = caller(request)
    await call(call.api.api_keys.RevokeApiKey, kpb.RevokeApiKeyRequest(name=request.path_params["name"],
                                                                       request_id=request_id()))
    return back("/api-keys")
