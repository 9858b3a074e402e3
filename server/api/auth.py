"""The auth interceptor: who may call what, and what a call may cost.

It sits in front of the error interceptor and wraps every handler, whatever
its kind, in one guard that
* checks the caller's key against the scope table (flowdeck.server.api.security);
* checks every request message against the request limits before the
  handler sees it (flowdeck.server.api.limits), one by one in a client
  stream, and an agent key's reports against its rules;
* bounds the server-side work of a call (rpc_deadline_seconds), except a
  long-lived bidirectional stream (the lease stream), which is counted per key
  instead and ends when its key is revoked;
* logs every mutating call with the key's name (never the key).
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from flowdeck.core.errors import DeadlineExceededError, FlowdeckError, UnauthenticatedError
from flowdeck.server.api.handlers import kind_of, rewrapped
from flowdeck.server.api.interceptors import status_for
from flowdeck.server.api.limits import CallLimits
from flowdeck.server.api.scopes import AGENT_CHECKS, MUTATING, OPEN, SCOPE_FOR
from flowdeck.server.api.security import Principal, Security, current_principal

log = logging.getLogger("flowdeck.server.auth")



async def _abort(context, exc: BaseException):
    code, message, trailing = status_for(exc)
    if trailing:
        context.set_trailing_metadata(trailing)
    await context.abort(code, message)


def _audit(principal: Principal | None, method: str, need: str | None, outcome: str) -> None:
    if principal is not None and need in MUTATING:
        log.info("%s by API key %r (scope %s): %s", method.lstrip("/"), principal.name, principal.scope, outcome)


def _outcome(context) -> str:
    code = context.code()
    return "OK" if code is None else code.name


async def _each_checked(requests, check):
    async for request in requests:
        check(request)
        yield request


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, security: Security):
        self.security = security
        self.settings = security.settings

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or SCOPE_FOR.get(handler_call_details.method) == OPEN:
            return handler
        kind = kind_of(handler)
        return rewrapped(handler, kind, self._guard(getattr(handler, kind), kind, handler_call_details))

    def _guard(self, inner, kind: str, details):
        """One coroutine for every handler kind: responses of a server stream
        are written with context.write, so the guard runs in the call's task
        from the first request to the last response."""
        security, settings = self.security, self.settings
        method, metadata = details.method, details.invocation_metadata
        need = SCOPE_FOR.get(method)
        streams_in, streams_out = kind.startswith("stream"), kind.endswith("stream")
        long_lived = streams_in and streams_out
        budget = None if long_lived or settings.rpc_deadline_seconds <= 0 else settings.rpc_deadline_seconds
        agent_check = AGENT_CHECKS.get(method)

        async def guarded(request, context):
            limits = CallLimits(settings)
            principal = key_streams = None
            try:
                principal = await security.admit(method, metadata)

                def check(message) -> None:
                    limits.check(message)
                    if agent_check is not None and principal is not None and principal.scope == "agent":
                        agent_check(message)

                if streams_in:
                    request = _each_checked(request, check)
                else:
                    check(request)
                if principal is not None and long_lived:
                    key_streams = security.open_stream(principal)
            except Exception as exc:  # noqa: BLE001 - a domain error from the checks
                await _abort(context, exc)
            if principal is not None:
                current_principal.set(principal)
            if long_lived:
                _audit(principal, method, need, "stream opened")
            response = timeout = None
            try:
                async with asyncio.timeout(budget) as timeout:
                    if key_streams is not None:
                        key_streams.end_when_revoked(timeout)
                    if streams_out:
                        async for item in inner(request, context):
                            await context.write(item)
                    else:
                        response = await inner(request, context)
            except TimeoutError:
                if not timeout.expired():  # the handler's own, not the call's time running out
                    raise
                if key_streams is not None and key_streams.revoked:
                    log.info("ending the stream of revoked API key %r", principal.name)
                    await _abort(context, UnauthenticatedError(f"the API key {principal.name!r} was revoked",
                                                               reason="API_KEY_REVOKED"))
                await _abort(context, DeadlineExceededError(
                    f"the server stopped working on this call after {settings.rpc_deadline_seconds:g}s "
                    "(FLOWDECK_RPC_DEADLINE_SECONDS)",
                    reason="SERVER_TIME_LIMIT_REACHED", setting="FLOWDECK_RPC_DEADLINE_SECONDS"))
            except FlowdeckError as exc:
                # Raised outside the error interceptor (gRPC's own services
                # read their request stream through the checks above).
                await _abort(context, exc)
            finally:
                if key_streams is not None:
                    key_streams.forget(timeout)
                    security.close_stream(principal, key_streams)
                _audit(principal, method, need, "stream closed" if long_lived else _outcome(context))
            return response

        return guarded
