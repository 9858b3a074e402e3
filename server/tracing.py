"""The server's part of a run's trace (when OTEL_* turns tracing on;
flowdeck.core.telemetry). The RPC spans come from OpenTelemetry's gRPC
instrumentation (flowdeck.server.api.observe); here:

* a run keeps the trace context of the call that created it (its
  `trace_context` column), so its lease, however much later and on whichever
  replica, continues the same trace;
* each lease is a "flowdeck.dispatch" span from the moment the run was due to
  the moment it was leased, and its context goes to the agent in the lease.
"""
from __future__ import annotations

import time

from flowdeck.core import telemetry


# Set when the server starts (flowdeck.server.api.observe): the hot paths ask a flag, not the environment.
_active = False


def activate(active: bool) -> None:
    global _active
    _active = active


def on() -> bool:
    return _active


def call_context() -> dict[str, str] | None:
    """The trace context of the RPC being handled (to store with a run it creates), or None."""
    if not on():
        return None
    return telemetry.current_carrier() or None


def traced_leases(leases: list) -> list:
    """`leases` (flowdeck.server.leasing.Lease), each with its dispatch span's trace context."""
    if not leases or not on():
        return leases
    out = []
    now_ns = time.time_ns()
    for lease in leases:
        run = lease.run
        due = max(run.expected_start_time, run.created)
        attributes = {"flowdeck.flow_run.id": run.id, "flowdeck.flow_run.name": run.name,
                      "flowdeck.agent.name": run.agent_name or ""}
        with telemetry.span("flowdeck.dispatch", lease.trace_context,
                            start_time_ns=min(now_ns, int(due.timestamp() * 1e9)), attributes=attributes) as ctx:
            out.append(lease._replace(trace_context=ctx))
    return out
