"""The interceptors that observe calls: Prometheus metrics per RPC and, when
OTEL_* turns tracing on, OpenTelemetry's server spans.

Order (outermost first): metrics, auth, tracing, errors. Metrics see every
call, refusals by the auth interceptor included. The tracing interceptor
wraps flowdeck's own services only, inside auth: its streaming wrapper
iterates a generator, which the error interceptor's handlers are (the
auth guard and grpc's health Watch write with context.write instead).
"""
from __future__ import annotations

import asyncio
import time

import grpc

from flowdeck.core import logs, telemetry
from flowdeck.server import metrics, tracing
from flowdeck.server.api.handlers import kind_of, rewrapped


class _Method:
    """The metric children of one RPC method, made once."""

    def __init__(self, full: str, timed: bool):
        service, _, name = full.lstrip("/").rpartition("/")
        self.labels = (service.rpartition(".")[2] or service, name)
        self.in_flight = metrics.GRPC_IN_FLIGHT.labels(*self.labels)
        self.seconds = metrics.GRPC_SECONDS.labels(*self.labels) if timed else None
        self.handled: dict[str, object] = {}

    def done(self, code: str, seconds: float) -> None:
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = metrics.GRPC_HANDLED.labels(*self.labels, code)
        child.inc()
        if self.seconds is not None:
            self.seconds.observe(seconds)


def _code(context, exc: BaseException | None) -> str:
    code = context.code()
    if code is not None:
        return code.name
    if exc is None:
        return "OK"
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN"


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every call by method and status code, times it, and keeps the in-flight gauge."""

    def __init__(self) -> None:
        self._methods: dict[str, _Method] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # an unknown method: UNIMPLEMENTED, and no label made for it
        kind = kind_of(handler)
        method = self._methods.get(handler_call_details.method)
        if method is None:
            method = self._methods[handler_call_details.method] = _Method(
                handler_call_details.method, timed=kind != "stream_stream")
        inner = getattr(handler, kind)

        async def observed(request, context):
            logs.bind(rpc=handler_call_details.method)
            method.in_flight.inc()
            started = time.perf_counter()
            exc = None
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):  # a generator: its responses are written here
                    async for item in result:
                        await context.write(item)
                    return None
                return await result
            except BaseException as e:
                exc = e
                raise
            finally:
                method.in_flight.dec()
                method.done(_code(context, exc), time.perf_counter() - started)

        return rewrapped(handler, kind, observed)


def _flowdeck_only(details) -> bool:
    return details.method.startswith("/flowdeck.")


def tracing_interceptors() -> list:
    """OpenTelemetry's server interceptor when tracing is on, else none."""
    active = telemetry.ensure_tracing("flowdeck-server")
    tracing.activate(active)
    if not active:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(filter_=_flowdeck_only)]
