"""What an agent shows of itself: Prometheus metrics on an optional
`--metrics-port` (loopback by default), and, when OTEL_* turns tracing on,
a span per run that continues the trace of the lease.

Runs finished are counted by how the agent saw them end (`outcome`):
    completed   the flow process exited 0 (the run reported COMPLETED)
    failed      it exited 1 (the run reported FAILED)
    lease_lost  it exited 3: a report was refused, the lease belonged to another
    crashed     any other exit or a signal (the agent reports CRASHED)
    cancelled   it was stopped on a cancel request
    not_started it never started (released, cancelled before, or could not start)
"""
from __future__ import annotations

import contextlib
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

from flowdeck.core import telemetry
from flowdeck.core.errors import FailedPreconditionError

OUTCOMES = ("completed", "failed", "lease_lost", "crashed", "cancelled", "not_started")
_EXIT_OUTCOME = {0: "completed", 1: "failed", 3: "lease_lost"}

# The agent's own registry: an agent embedded in another program (tests,
# benchmarks) never collides with that program's metrics.
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)
RUNS_HELD = Gauge("flowdeck_agent_runs_held", "Runs this agent holds now (leased, starting or running).",
                  registry=REGISTRY)
RUNS_STARTED = Counter("flowdeck_agent_runs_started_total", "Flow processes (or containers) this agent started.",
                       registry=REGISTRY)
RUNS_FINISHED = Counter("flowdeck_agent_runs_finished_total", "Runs this agent let go of, by outcome.",
                        ["outcome"], registry=REGISTRY)
START_SECONDS = Histogram(
    "flowdeck_agent_flow_start_seconds", "Time to start a run's flow process or container.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0), registry=REGISTRY)
RECONNECTS = Counter("flowdeck_agent_reconnects_total", "Lease streams opened again after one ended.",
                     registry=REGISTRY)
for _outcome in OUTCOMES:  # every outcome shows from the start (a rate over a missing series is nothing)
    RUNS_FINISHED.labels(_outcome)


def serve(port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (0: a free port); returns the port."""
    disable_created_metrics()  # no `_created` series (see flowdeck.server.app.serve_forever)
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as e:
        raise FailedPreconditionError(f"cannot serve the agent's metrics on {host}:{port}: {e.strerror or e}",
                                      reason="METRICS_PORT_UNAVAILABLE") from None
    return server.server_port


def exit_outcome(rc: int | None) -> str:
    return _EXIT_OUTCOME.get(rc, "crashed")


class RunWatch:
    """One leased run on the agent: held from the lease to the end, its start
    timed, its outcome counted once, inside a span continuing the lease's trace."""

    def __init__(self, leased):
        self._span = None
        self.trace = dict(leased.trace_context)
        RUNS_HELD.inc()
        if telemetry.ensure_tracing("flowdeck-agent"):
            self._span = contextlib.ExitStack()
            self.trace = self._span.enter_context(telemetry.span(
                "flowdeck.agent.run", self.trace,
                attributes={"flowdeck.flow_run.id": leased.flow_run.id,
                            "flowdeck.flow_run.name": leased.flow_run.name}))

    def flow_env(self) -> dict[str, str]:
        """TRACEPARENT/TRACESTATE for the flow process: it continues this trace."""
        return telemetry.carrier_env(self.trace)

    @contextlib.contextmanager
    def starting(self):
        started = time.perf_counter()
        yield
        START_SECONDS.observe(time.perf_counter() - started)
        RUNS_STARTED.inc()

    def end(self, *, started: bool, cancelled: bool, rc: int | None) -> None:
        """The run is no longer the agent's: `rc` is its process's exit code."""
        if not started:
            outcome = "cancelled" if cancelled else "not_started"
        elif cancelled and rc != 0:
            outcome = "cancelled"
        else:
            outcome = exit_outcome(rc)
        RUNS_HELD.dec()
        RUNS_FINISHED.labels(outcome).inc()
        if self._span is not None:
            self._span.close()
