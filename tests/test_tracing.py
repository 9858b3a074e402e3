"""One trace from the SDK to the flow process: "create run -> lease -> flow
process -> states and logs".

The SDK side runs here with an in-memory span exporter; the server, the
agent and the flow process are real processes configured by the standard
OTEL_* variables, exporting over OTLP/gRPC to a receiver in this test. All
their spans for the run must share the SDK's trace id, each hop the child
of the one before.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from support.otlp import OtlpReceiver
from support.processes import ServerProcess
from support.waiting import wait_for_state, wait_until
from test_agent_e2e import AgentProcess

FLOW = '''
from flowdeck import flow, get_run_logger


@flow
def traced():
    get_run_logger().info("a log line of the traced run")
    return 1
'''
RPC = "/flowdeck.v1."


@pytest.fixture
def sdk_spans(monkeypatch):
    """The SDK's tracer provider for this process: spans kept in memory.
    OTEL_TRACES_EXPORTER turns flowdeck's tracing on here for this test only
    (the provider, set once per process, stays but is unused afterwards)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    yield exporter
    exporter.shutdown()


def test_one_trace_from_the_sdk_through_server_and_agent_into_the_flow_process(tmp_path, sdk_spans):
    from opentelemetry import trace

    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    (tmp_path / "home").mkdir()
    (tmp_path / "flows.py").write_text(FLOW)
    receiver = OtlpReceiver().start()
    server = ServerProcess(tmp_path / "server", database_url=f"sqlite:///{tmp_path / 'flowdeck.db'}",
                           env=receiver.env)
    server.start()
    agent = None
    client = FlowdeckClient(server.address, timeout=20)
    try:
        client.create_work_queue("main")
        dep, _ = client.create_deployment("traced", flow_name="traced",
                                          flow_data=file_flow_data(tmp_path / "flows.py", "traced"))
        agent = AgentProcess(tmp_path, server.address, "main", "tracer", **receiver.env)
        agent.wait_for("connected to")
        with trace.get_tracer("test").start_as_current_span("user code") as root:
            run = client.create_flow_run_from_deployment(deployment_id=dep.id)
        trace_id = format(root.get_span_context().trace_id, "032x")
        wait_for_state(client, run.id, "COMPLETED")

        # The SDK's own span: the client call, a child of the user's span.
        mine = {s.name: s for s in sdk_spans.get_finished_spans()}
        call = mine[RPC + "FlowRunService/CreateFlowRunFromDeployment"]
        assert format(call.context.trace_id, "032x") == trace_id
        assert call.parent.span_id == root.get_span_context().span_id

        wanted = {
            ("flowdeck-server", RPC + "FlowRunService/CreateFlowRunFromDeployment"),
            ("flowdeck-server", "flowdeck.dispatch"),
            ("flowdeck-agent", "flowdeck.agent.run"),
            ("flowdeck-flow-run", "flowdeck.flow_run"),
            ("flowdeck-flow-run", RPC + "FlowRunService/SetFlowRunState"),
            ("flowdeck-flow-run", RPC + "LogService/CreateLogs"),
            ("flowdeck-server", RPC + "FlowRunService/SetFlowRunState"),
            ("flowdeck-server", RPC + "LogService/CreateLogs"),
        }

        def all_exported():
            return wanted <= {(s.service, s.name) for s in receiver.of_trace(trace_id)}

        wait_until(all_exported, lambda: f"the run's spans in trace {trace_id}: got "
                                         f"{sorted({(s.service, s.name) for s in receiver.of_trace(trace_id)})}\n"
                                         f"all: {sorted({(s.service, s.name, s.trace_id) for s in receiver.spans})}")
        spans = receiver.of_trace(trace_id)
        one = {(s.service, s.name): s for s in spans}
        created = one[("flowdeck-server", RPC + "FlowRunService/CreateFlowRunFromDeployment")]
        dispatch = one[("flowdeck-server", "flowdeck.dispatch")]
        agent_run = one[("flowdeck-agent", "flowdeck.agent.run")]
        flow_run = one[("flowdeck-flow-run", "flowdeck.flow_run")]
        # Each hop is the child of the one before it.
        assert created.parent_id == format(call.context.span_id, "016x")
        assert dispatch.parent_id == created.span_id
        assert agent_run.parent_id == dispatch.span_id
        assert flow_run.parent_id == agent_run.span_id
        reports = [s for s in spans if s.service == "flowdeck-flow-run" and s.name.startswith(RPC)]
        assert reports and all(s.parent_id == flow_run.span_id for s in reports)
        # The log shipper's thread reports inside the run's span too.
        assert any(s.name.endswith("CreateLogs") for s in reports)
    finally:
        client.close()
        if agent is not None:
            agent.stop()
        server.stop()
        receiver.stop()


def test_tracing_is_off_by_default_and_imports_nothing():
    """No OTEL_* set: a client, a channel and a call make no span and never
    import OpenTelemetry."""
    code = (
        "import os, sys\n"
        "for k in list(os.environ):\n"
        "    if k.startswith('OTEL_'): del os.environ[k]\n"
        "from flowdeck.channels import make_channel\n"
        "from flowdeck.client import FlowdeckClient\n"
        "ch = make_channel('127.0.0.1:1')\n"
        "FlowdeckClient('127.0.0.1:1', channel=ch).close()\n"
        "from flowdeck.core import telemetry\n"
        "assert not telemetry.ensure_tracing('x')\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], sorted(sys.modules)\n"
        "os.environ['OTEL_TRACES_EXPORTER'] = 'none'\n"
        "assert not telemetry.tracing_configured()\n"
        "os.environ['OTEL_TRACES_EXPORTER'] = 'console'\n"
        "assert telemetry.tracing_configured()\n"
        "os.environ['OTEL_SDK_DISABLED'] = 'true'\n"
        "assert not telemetry.tracing_configured()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_an_unsupported_exporter_stops_the_start_with_one_line(tmp_path):
    from conftest import run_cli

    r = run_cli("server", "start", "--port", "0", timeout=60,
                env={"FLOWDECK_HOME": str(tmp_path), "OTEL_TRACES_EXPORTER": "zipkin"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        "Error: OTEL_TRACES_EXPORTER='zipkin' is not supported: use one of otlp, console (or none)"], r.stderr
