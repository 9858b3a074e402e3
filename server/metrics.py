"""The server's Prometheus metrics, and the calls that record them.

Labels are bounded: RPC methods and status codes, state types, work queue
names (resolved when scraped: flowdeck.server.metrics_collector), never run
ids or deployment names. Run events that happen inside a transaction (a run
created, a state entered) are noted on the session and counted when it
commits, so a rolled-back change counts nothing.

Every metric is listed in the README ("Metrics"); the names are the contract
of dashboards and alerts (docs/grafana, docs/prometheus).
"""
from __future__ import annotations

import collections
import threading
from typing import Iterable

from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Gauge,
                               Histogram)
from sqlalchemy import event
from sqlalchemy.orm import Session

from flowdeck.core import states

# The server's own registry (with the process's CPU, memory and open files): a
# server embedded in another program never adds to that program's default one.
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)
# Short calls to slow ones; the lease stream is long-lived and not timed.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DISPATCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# -- gRPC (flowdeck.server.api.observe) -------------------------------------------
GRPC_HANDLED = Counter(
    "flowdeck_grpc_server_handled_total", "RPCs the server finished, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"], registry=REGISTRY)
GRPC_SECONDS = Histogram(
    "flowdeck_grpc_server_handling_seconds", "Time from an RPC's start to its status (not the lease stream).",
    ["grpc_service", "grpc_method"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
GRPC_IN_FLIGHT = Gauge(
    "flowdeck_grpc_server_in_flight", "RPCs being handled now (open lease streams included).",
    ["grpc_service", "grpc_method"], registry=REGISTRY)

# -- flow runs ------------------------------------------------------------------------
RUNS_CREATED = Counter("flowdeck_flow_runs_created_total", "Flow runs created (by the API or the scheduler).",
                       registry=REGISTRY)
DISPATCH_SECONDS = Histogram(
    "flowdeck_dispatch_latency_seconds", "From a run's expected start (when it became due) to its lease.",
    buckets=DISPATCH_BUCKETS, registry=REGISTRY)
LEASE_EXPIRATIONS = Counter(
    "flowdeck_lease_expirations_total", "Leases that lapsed (the agent stopped heartbeating), by what the run became.",
    ["state"], registry=REGISTRY)
for _state in (states.SCHEDULED, states.CRASHED, states.CANCELLED):  # shown at 0 from the start
    LEASE_EXPIRATIONS.labels(_state)
FENCED_REPORTS = Counter(
    "flowdeck_fenced_reports_total", "State reports refused for a stale fencing token (the lease was lost).",
    registry=REGISTRY)
SCHEDULER_SECONDS = Histogram(
    "flowdeck_scheduler_pass_seconds", "Duration of one scheduler pass.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), registry=REGISTRY)
SCHEDULER_INSERTED = Counter("flowdeck_scheduler_runs_inserted_total", "Runs the scheduler created.",
                             registry=REGISTRY)
DB_ERRORS = Counter("flowdeck_db_errors_total", "Database statements that failed, by SQLAlchemy error class.",
                    ["error"], registry=REGISTRY)

# Run events by work queue, counted here by queue id; the collector names the
# queue at scrape time. (metric suffix, state type or "", work queue id or "")
RUN_EVENTS: collections.Counter[tuple[str, str, str]] = collections.Counter()
_events_lock = threading.Lock()
LEASED, STARTED, FINISHED = "leased", "started", "finished"

_PENDING = "flowdeck.metrics.pending"


def _count(events: Iterable[tuple[str, str, str]]) -> None:
    with _events_lock:
        RUN_EVENTS.update(events)


def run_events() -> dict[tuple[str, str, str], int]:
    """A copy of RUN_EVENTS, for a scrape."""
    with _events_lock:
        return dict(RUN_EVENTS)


def _event_for(state_type: str, queue_id: str | None) -> tuple[str, str, str] | None:
    if state_type == states.RUNNING:
        return (STARTED, "", queue_id or "")
    if state_type in states.TERMINAL:
        return (FINISHED, state_type, queue_id or "")
    return None


def _note(s: Session, item) -> None:
    s.info.setdefault(_PENDING, []).append(item)


def run_created(s: Session, state_type: str, count: int = 1) -> None:
    """`count` runs were created in `state_type` in this transaction."""
    if count <= 0:
        return
    _note(s, ("created", count))
    found = _event_for(state_type, None)
    if found:
        _note(s, (found, count))


def state_entered(s: Session, state_type: str, queue_id: str | None, count: int = 1) -> None:
    """A run (or `count`) entered `state_type` in this transaction."""
    if count <= 0:
        return
    found = _event_for(state_type, queue_id)
    if found:
        _note(s, (found, count))


@event.listens_for(Session, "after_commit")
def _committed(s: Session) -> None:
    pending = s.info.pop(_PENDING, None)
    if not pending:
        return
    events: collections.Counter = collections.Counter()
    for what, n in pending:
        if what == "created":
            RUNS_CREATED.inc(n)
        else:
            events[what] += n
    _count(events)


@event.listens_for(Session, "after_rollback")
def _rolled_back(s: Session) -> None:
    s.info.pop(_PENDING, None)


# -- after the fact (outside transactions) -----------------------------------------

def runs_leased(leases) -> None:
    """Leases just committed: counted per queue, and how long each run waited since it was due."""
    if not leases:
        return
    _count((LEASED, "", lease.run.work_queue_id or "") for lease in leases)
    for lease in leases:
        DISPATCH_SECONDS.observe(max(0.0, (lease.server_time - lease.run.expected_start_time).total_seconds()))


def leases_expired(done: list[tuple[str, str]]) -> None:
    """(run id, new state type) of lapsed leases."""
    for _run_id, state_type in done:
        LEASE_EXPIRATIONS.labels(state_type).inc()


def scheduler_pass(seconds: float, inserted: int) -> None:
    SCHEDULER_SECONDS.observe(seconds)
    if inserted:
        SCHEDULER_INSERTED.inc(inserted)


def _failed(ctx) -> None:
    DB_ERRORS.labels(type(ctx.sqlalchemy_exception).__name__ if ctx.sqlalchemy_exception else "Other").inc()


def watch_database(db) -> None:
    """Count the database's failed statements in flowdeck_db_errors_total."""
    for engine in {id(e): e for e in (db.read_engine, db.write_engine)}.values():
        if not event.contains(engine, "handle_error", _failed):
            event.listen(engine, "handle_error", _failed)
