"""An OTLP/gRPC trace receiver on 127.0.0.1, for tests: what the processes
under test export (OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint) is kept in
memory, span by span."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tgrpc


class Span(NamedTuple):
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


def _service(resource) -> str:
    for attr in resource.attributes:
        if attr.key == "service.name":
            return attr.value.string_value
    return ""


class OtlpReceiver(tgrpc.TraceServiceServicer):
    def __init__(self):
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(4))
        tgrpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to export here (batches sent every 100 ms)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}", "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_BSP_SCHEDULE_DELAY": "100"}

    def Export(self, request, context):
        got = [Span(_service(rs.resource), span.name, span.trace_id.hex(), span.span_id.hex(),
                    span.parent_span_id.hex())
               for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
        with self._lock:
            self.spans.extend(got)
        return tpb.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def start(self) -> "OtlpReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(1)
