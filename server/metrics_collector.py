"""What a scrape reads besides the plain counters: the run events by work
queue name, the gauges the metrics loop counted in the database, and the
live state of the dispatcher and the database pools.

A scrape never touches the runs table: the gauges come from the last
`run_counts.count` of the metrics loop (every `metrics_refresh_seconds`), the
rest from memory. Several servers in one process (tests, the embedded
default) are summed.
"""
from __future__ import annotations

import collections
import logging
import threading

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from flowdeck.server import metrics, run_counts

log = logging.getLogger("flowdeck.server.metrics")
NO_QUEUE = ""  # runs never leased (cancelled while SCHEDULED, run in place)
DELETED_QUEUE = "(deleted)"


class Watched:
    """One running server as the collector sees it."""

    def __init__(self, app):
        self.db = app.db
        self.dispatcher = app.dispatcher
        self.counts: run_counts.RunCounts | None = None


class ServerCollector(Collector):
    def __init__(self) -> None:
        self.watched: list[Watched] = []
        self.names: dict[str, str] = {}  # work queue id -> name (kept after a queue is deleted)
        self.lock = threading.Lock()

    # -- servers --

    def watch(self, app) -> Watched:
        w = Watched(app)
        with self.lock:
            self.watched.append(w)
        return w

    def forget(self, w: Watched) -> None:
        with self.lock:
            if w in self.watched:
                self.watched.remove(w)

    def store(self, w: Watched, counts: run_counts.RunCounts) -> None:
        self.names.update(counts.queue_names)
        w.counts = counts

    # -- scrape --

    def _queue_name(self, queue_id: str) -> str:
        if not queue_id:
            return NO_QUEUE
        return self.names.get(queue_id) or DELETED_QUEUE

    def _resolve(self, watched: list[Watched], ids) -> None:
        """Look up queues a scrape does not know yet (made since the last
        count); one it cannot find is deleted. A database that does not answer
        leaves them unnamed for this scrape, which goes on."""
        unknown = [i for i in ids if i and i not in self.names]
        if not unknown or not watched:
            return
        try:
            with watched[0].db.read() as s:
                found = run_counts.queue_names(s, unknown)
        except Exception as e:  # noqa: BLE001 - metrics must not fail with the database
            log.warning("metrics: could not name work queues: %s", type(e).__name__)
            return
        self.names.update({i: found.get(i, DELETED_QUEUE) for i in unknown})

    def collect(self):
        with self.lock:
            watched = list(self.watched)
        events = metrics.run_events()
        conns = [c for w in watched for c in list(w.dispatcher.conns.values()) if not c.closed]
        self._resolve(watched, {q for _, _, q in events} | {q for c in conns for q in c.queue_ids})
        yield from self._run_events(events)
        yield from self._gauges(watched, conns)

    def _run_events(self, events):
        leased = CounterMetricFamily("flowdeck_flow_runs_leased", "Flow runs leased to agents, by work queue.",
                                     labels=["work_queue"])
        started = CounterMetricFamily("flowdeck_flow_runs_started", "Flow runs that entered RUNNING, by work queue.",
                                      labels=["work_queue"])
        finished = CounterMetricFamily(
            "flowdeck_flow_runs_finished",
            "Flow runs that ended, by final state (COMPLETED, FAILED, CRASHED, CANCELLED) and work queue.",
            labels=["state", "work_queue"])
        family = {metrics.LEASED: leased, metrics.STARTED: started, metrics.FINISHED: finished}
        totals: collections.Counter = collections.Counter()
        for (what, state, queue_id), n in events.items():
            totals[(what, state, self._queue_name(queue_id))] += n
        for (what, state, queue), n in sorted(totals.items()):
            family[what].add_metric([state, queue] if what == metrics.FINISHED else [queue], n)
        return leased, started, finished

    def _gauges(self, watched, conns):
        counted = [w.counts for w in watched if w.counts is not None]
        runs = GaugeMetricFamily("flowdeck_flow_runs", "Flow runs now in each active state (counted every "
                                 "metrics_refresh_seconds).", labels=["state"])
        for state in run_counts.ACTIVE_STATES:
            runs.add_metric([state], sum(c.by_state.get(state, 0) for c in counted))
        late = GaugeMetricFamily("flowdeck_flow_runs_late", "SCHEDULED runs past their expected start by more "
                                 "than late_after_seconds.", value=sum(c.late for c in counted))
        waiting = GaugeMetricFamily("flowdeck_work_queue_runs_waiting", "Due SCHEDULED runs each work queue "
                                    "matches (waiting for an agent).", labels=["work_queue"])
        per_queue: collections.Counter = collections.Counter()
        for c in counted:
            for queue_id, n in c.waiting.items():
                per_queue[self._queue_name(queue_id)] += n
        for queue, n in sorted(per_queue.items()):
            waiting.add_metric([queue], n)
        yield from (runs, late, waiting)
        yield GaugeMetricFamily("flowdeck_agents_connected", "Agents with an open lease stream to this server.",
                                value=len({c.agent_id for c in conns}))
        streams = GaugeMetricFamily("flowdeck_lease_streams_open", "Open lease streams serving each work queue.",
                                    labels=["work_queue"])
        per_queue = collections.Counter(self._queue_name(q) for c in conns for q in c.queue_ids)
        for queue, n in sorted(per_queue.items()):
            streams.add_metric([queue], n)
        yield streams
        engines = {id(e): e for w in watched for e in (w.db.read_engine, w.db.write_engine)}.values()
        yield GaugeMetricFamily("flowdeck_db_pool_connections_in_use", "Database connections checked out now.",
                                value=sum(e.pool.checkedout() for e in engines))
        yield GaugeMetricFamily("flowdeck_db_pool_size", "Database connections the pools keep.",
                                value=sum(e.pool.size() for e in engines))

    def describe(self):
        # The names only (registration checks them without a scrape).
        for name, kind, labels in (
                ("flowdeck_flow_runs_leased", CounterMetricFamily, ["work_queue"]),
                ("flowdeck_flow_runs_started", CounterMetricFamily, ["work_queue"]),
                ("flowdeck_flow_runs_finished", CounterMetricFamily, ["state", "work_queue"]),
                ("flowdeck_flow_runs", GaugeMetricFamily, ["state"]),
                ("flowdeck_flow_runs_late", GaugeMetricFamily, None),
                ("flowdeck_work_queue_runs_waiting", GaugeMetricFamily, ["work_queue"]),
                ("flowdeck_agents_connected", GaugeMetricFamily, None),
                ("flowdeck_lease_streams_open", GaugeMetricFamily, ["work_queue"]),
                ("flowdeck_db_pool_connections_in_use", GaugeMetricFamily, None),
                ("flowdeck_db_pool_size", GaugeMetricFamily, None)):
            yield kind(name, "", labels=labels)


COLLECTOR = ServerCollector()
metrics.REGISTRY.register(COLLECTOR)
