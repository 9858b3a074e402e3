"""OpenTelemetry tracing, shared by the SDK, the server, the agent and flow processes.

Off by default, and then nothing of OpenTelemetry is imported. It is on when the
standard environment says where spans go: OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER (otlp or console;
`none` keeps it off, as does OTEL_SDK_DISABLED=true). The SDK is then set up
once per process from OTEL_* (exporter endpoint, headers, sampler, batching,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES); a TracerProvider the
application set before is used as it is.

A run's trace crosses processes as a W3C trace context ("traceparent",
"tracestate"): in gRPC metadata (the instrumentation does it), in the lease
message (`LeasedRun.trace_context`) and in the flow process's environment
(TRACEPARENT, TRACESTATE).
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, Mapping

from flowdeck.core.errors import FailedPreconditionError

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EXPORTERS = ("otlp", "console")
TRACER = "flowdeck"
# Carrier key -> environment variable of the flow process.
ENV_FOR = {"traceparent": "TRACEPARENT", "tracestate": "TRACESTATE"}

_setup_lock = threading.Lock()
_set_up = False


def tracing_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* environment turns tracing on."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or any(env.get(v) for v in ENDPOINT_VARIABLES)


def ensure_tracing(service_name: str) -> bool:
    """Whether this process traces; the first call that says yes sets up the
    SDK from OTEL_* (named `service_name` unless OTEL_SERVICE_NAME says otherwise)."""
    global _set_up
    if not tracing_configured():
        return False
    with _setup_lock:
        if not _set_up:
            _install_provider(service_name)
            _set_up = True
    return True


def _install_provider(service_name: str) -> None:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as e:
        raise FailedPreconditionError(f"OTEL_* asks for tracing but OpenTelemetry is not installed ({e.name}): "
                                      "pip install 'flowdeck[otel]'", reason="TRACING_NOT_INSTALLED") from None
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # the application set up its own
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)


def _exporter():
    name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise FailedPreconditionError(f"OTEL_TRACES_EXPORTER={name!r} is not supported: use one of "
                                      f"{', '.join(EXPORTERS)} (or none)", reason="TRACING_EXPORTER_UNSUPPORTED")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer():
    from opentelemetry import trace

    return trace.get_tracer(TRACER)


def current_carrier() -> dict[str, str]:
    """The current span's trace context as a carrier ({} when none)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def span(name: str, parent: Mapping[str, str] | None = None, *, start_time_ns: int | None = None,
         attributes: Mapping[str, str | int] | None = None) -> Iterator[dict[str, str]]:
    """A current span named `name`, child of the trace context `parent` (a
    carrier) when it has one; yields the span's own context as a carrier."""
    from opentelemetry import propagate

    ctx = propagate.extract(dict(parent)) if parent else None
    with tracer().start_as_current_span(name, context=ctx, start_time=start_time_ns,
                                        attributes=dict(attributes or {})):
        yield current_carrier()


def process_span(service_name: str, name: str,
                 attributes: Mapping[str, str | int] | None = None) -> contextlib.ExitStack:
    """A span for this process's work, continuing the trace in TRACEPARENT
    when tracing is on; `close()` the stack to end it (a no-op when off)."""
    stack = contextlib.ExitStack()
    if ensure_tracing(service_name):
        stack.enter_context(span(name, carrier_from_env(), attributes=attributes))
    return stack


def carrier_env(carrier: Mapping[str, str]) -> dict[str, str]:
    """The flow process's TRACEPARENT/TRACESTATE for a carrier."""
    return {ENV_FOR[k]: v for k, v in carrier.items() if k in ENV_FOR and v}


def carrier_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[v] for k, v in ENV_FOR.items() if env.get(v)}
