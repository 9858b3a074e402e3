"""/metrics on the server's HTTP port (the dashboard's, or alone with --no-ui).

prometheus-client's ASGI app serves the server's registry (its metrics, the
process's CPU, memory and open files). Under auth a scrape
sends `Authorization: Bearer KEY` with a key of read scope (any valid key),
checked by the API's own key verification on the gRPC server's loop; with
`metrics_public` (--metrics-public) anyone on the network may scrape.
"""
from __future__ import annotations

import asyncio

from prometheus_client import make_asgi_app
from starlette.responses import PlainTextResponse

from flowdeck.core.errors import FlowdeckError, PermissionDeniedError
from flowdeck.server import metrics
from flowdeck.server.api.scopes import ALLOWED, READ
from flowdeck.server.api.security import Security

def _refusal(err: FlowdeckError) -> PlainTextResponse:
    status = 403 if isinstance(err, PermissionDeniedError) else 401
    return PlainTextResponse(f"{err.message}\n", status_code=status,
                             headers={"www-authenticate": 'Bearer realm="flowdeck metrics"'})


def metrics_app(security: Security, loop: asyncio.AbstractEventLoop, *, public: bool):
    """The ASGI app answering /metrics; `loop` is the gRPC server's (its database pool and key cache)."""
    exposition = make_asgi_app(registry=metrics.REGISTRY)
    guarded = security.enabled and not public

    async def check(header: str) -> None:
        principal = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            security.authenticate([("authorization", header)] if header else []), loop))
        if principal.scope not in ALLOWED[READ]:
            raise PermissionDeniedError(f"metrics need an API key with scope read (key {principal.name!r} "
                                        f"has scope {principal.scope})", reason="SCOPE_REQUIRED", scope="read")

    async def app(scope, receive, send):
        if guarded:
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
            try:
                await check(header)
            except FlowdeckError as err:
                return await _refusal(err)(scope, receive, send)
        await exposition(scope, receive, send)

    return app
