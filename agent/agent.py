"""The flowdeck agent: `flowdeck agent start --work-queue NAME [--limit N] [--name NAME]`.

It holds one lease stream (AgentService.Lease) open; the server pushes due runs
down it. Each leased run is started at once in a fresh process by the run's
flow runner, and the agent heartbeats to keep its leases. When the process
exits without having reported a terminal state the agent marks the run CRASHED
(with its fencing token). A CancelRun from the server terminates the flow's
process (SIGTERM, SIGKILL after a grace period) and the run becomes CANCELLED.

It never stops silently: after any error it logs one line and reconnects with
capped exponential backoff, keeping its agent id so the server knows its
running runs are still in good hands. SIGTERM/SIGINT stop leasing (the agent
reconnects with capacity 0 and gives back runs it has not started), let
running flows finish within the shutdown grace period, then stop the rest
(reported CRASHED). A second signal cuts the grace short.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time

import grpc
from pydantic import BaseModel, Field

from flowdeck.agent import observe, runners
from flowdeck.channels import normalize_address
from flowdeck.client import FlowdeckClient
from flowdeck.exceptions import FlowdeckError
from flowdeck.core import logs, telemetry
from flowdeck.core.settings import load_settings
from flowdeck.v1 import agent_service_pb2 as apb
from flowdeck.v1 import agent_service_pb2_grpc as agrpc

log = logging.getLogger("flowdeck.agent")


class AgentSettings(BaseModel):
    """Agent settings; each field `x` also reads FLOWDECK_AGENT_X."""

    api_url: str
    work_queues: list[str]
    name: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # How many runs the agent holds at once.
    limit: int = 10
    # SIGTERM: how long running flows get to finish before they are stopped.
    shutdown_grace: float = 30.0
    # Cancel: how long a flow process gets between SIGTERM and SIGKILL.
    cancel_grace: float = 10.0
    # Reconnect backoff: first and longest wait.
    backoff_min: float = 0.5
    backoff_max: float = 10.0
    # Requested lease TTL (the server may shorten it); 0: the server's.
    lease_ttl: float = 0.0
    # How often to look for orphaned flow run containers (flowdeck.agent.docker_sweep).
    docker_sweep_seconds: float = 10.0
    # Prometheus metrics at http://metrics_host:metrics_port/metrics (None: off; 0: a free port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, **overrides) -> "AgentSettings":
        """FLOWDECK_AGENT_* variables (FLOWDECK_API_URL for the server), then
        `overrides` (flags; None: not given). A bad value raises
        InvalidArgumentError naming the setting and its source."""
        return load_settings(cls, "FLOWDECK_AGENT_", overrides, fallbacks={"api_url": "FLOWDECK_API_URL"})


class RunSlot:
    """One leased run on this agent."""

    def __init__(self, leased: apb.LeasedRun):
        self.leased = leased
        self.lease_id = leased.lease.lease_id
        self.run_id = leased.flow_run.id
        self.run_name = leased.flow_run.name
        self.token = leased.lease.fencing_token
        self.lock = threading.Lock()
        self.handle = None  # from runners.start_run: a process or a container
        self.watch: observe.RunWatch | None = None
        self.started = False
        self.cancel_requested = False
        self.shutdown_stopped = False
        self.done = threading.Event()


class Agent:
    def __init__(self, settings: AgentSettings):
        if settings.limit < 1:
            raise ValueError(f"--limit must be at least 1, not {settings.limit}")
        self.settings = settings
        self.address = normalize_address(settings.api_url)
        # Reports ride out a server restart: six retries back off for about 36 s.
        self.client = FlowdeckClient(self.address, retries=6, channel=runners.channel(self.address))
        # gRPC's own reconnect backoff is capped too, so the agent is back within
        # about backoff_max of the server's return.
        self.channel = runners.channel(self.address, max_backoff=self.settings.backoff_max)
        self.stub = agrpc.AgentServiceStub(self.channel)
        self.agent_id = ""
        self.ttl = 30.0
        self.slots: dict[str, RunSlot] = {}
        self.slots_lock = threading.Lock()
        self.draining = False
        self.finished = threading.Event()
        self.signalled = threading.Event()
        self.hurry = threading.Event()
        self.wake = threading.Event()
        self._call = None
        self._outq: queue.Queue | None = None
        self._restart = False
        self.connected = threading.Event()
        self.runs_started = 0

    # -- stream ---------------------------------------------------------------------

    def _send(self, msg: apb.LeaseRequest) -> bool:
        q = self._outq
        if q is None:
            return False
        q.put(msg)
        return True

    def _hello(self) -> apb.LeaseRequest:
        hello = apb.AgentHello(agent_id=self.agent_id, agent_name=self.settings.name,
                               work_queues=self.settings.work_queues,
                               capacity=0 if self.draining else self.settings.limit)
        if self.settings.lease_ttl > 0:
            hello.lease_ttl.FromNanoseconds(int(self.settings.lease_ttl * 1e9))
        return apb.LeaseRequest(hello=hello)

    def _serve_stream(self) -> bool:
        """One lease stream, until it ends. Returns whether it was welcomed."""
        outq: queue.Queue = queue.Queue()
        ended = threading.Event()
        hello = self._hello()

        def requests():
            yield hello
            while not ended.is_set():
                try:
                    m = outq.get(timeout=1.0)
                except queue.Empty:
                    continue
                if m is None:
                    return
                yield m

        call = self.stub.Lease(requests())
        self._call = call
        welcomed = False
        try:
            for resp in call:
                kind = resp.WhichOneof("kind")
                if kind == "welcome":
                    self.agent_id = resp.welcome.agent_id
                    self.ttl = max(0.3, resp.welcome.lease_ttl.ToNanoseconds() / 1e9 or 30.0)
                    self._outq = outq
                    welcomed = True
                    self.connected.set()
                    log.info("agent %s (%s) connected to %s: queues %s, limit %d%s", self.settings.name,
                             self.agent_id, self.address, ", ".join(self.settings.work_queues),
                             self.settings.limit, " (draining)" if self.draining else "")
                    self._heartbeat()
                elif kind == "leased_run":
                    self._on_leased(resp.leased_run)
                elif kind == "cancel_run":
                    self._on_cancel(resp.cancel_run)
        finally:
            ended.set()
            self.connected.clear()
            if self._outq is outq:
                self._outq = None
            outq.put(None)
            self._call = None
        return welcomed

    def _connection_loop(self) -> None:
        delay = self.settings.backoff_min
        while not self.finished.is_set():
            welcomed = False
            try:
                welcomed = self._serve_stream()
                if not self.finished.is_set() and not self._restart:
                    log.warning("lease stream closed by the server; reconnecting in %.1fs", delay)
            except grpc.RpcError as e:
                if self.finished.is_set():
                    break
                if not (self._restart and e.code() == grpc.StatusCode.CANCELLED):
                    details = (e.details() or "").splitlines()[0] if e.details() else ""
                    log.warning("lease stream error: %s: %s; reconnecting in %.1fs", e.code().name, details, delay)
            except Exception as e:  # noqa: BLE001 - never stop silently
                log.warning("lease stream failed: %s: %s; reconnecting in %.1fs", type(e).__name__, e, delay)
            if not self.finished.is_set():
                observe.RECONNECTS.inc()
            if welcomed:
                delay = self.settings.backoff_min
            if self._restart:
                self._restart = False
                continue
            if self.finished.is_set():
                break
            self.wake.wait(delay)
            self.wake.clear()
            if not welcomed:
                delay = min(delay * 2, self.settings.backoff_max)
            else:
                delay = self.settings.backoff_min

    def _restart_stream(self) -> None:
        """Reconnect now (e.g. with capacity 0 when draining)."""
        self._restart = True
        call = self._call
        if call is not None:
            call.cancel()
        self.wake.set()

    # -- heartbeats ---------------------------------------------------------------------

    def _active_run_ids(self) -> list[str]:
        with self.slots_lock:
            return list(dict.fromkeys(s.run_id for s in self.slots.values()))

    def _heartbeat(self) -> None:
        self._send(apb.LeaseRequest(heartbeat=apb.AgentHeartbeat(flow_run_ids=self._active_run_ids())))

    def _heartbeat_loop(self) -> None:
        last = time.monotonic()
        while not self.finished.wait(0.1):
            # Three heartbeats per TTL (the TTL is known once welcomed).
            if time.monotonic() - last >= max(0.1, self.ttl / 3):
                last = time.monotonic()
                self._heartbeat()

    # -- runs ------------------------------------------------------------------------------

    def _on_leased(self, leased: apb.LeasedRun) -> None:
        lease_id = leased.lease.lease_id
        self._send(apb.LeaseRequest(ack=apb.LeaseAck(lease_ids=[lease_id])))
        if self.draining:
            self._send(apb.LeaseRequest(release=apb.LeaseRelease(lease_id=lease_id)))
            return
        slot = RunSlot(leased)
        with self.slots_lock:
            self.slots[lease_id] = slot
        # The thread lives as long as the flow process (which dies with it).
        threading.Thread(target=self._run_slot, args=(slot,), name=f"run-{slot.run_name}", daemon=True).start()

    def _on_cancel(self, cancel: apb.CancelRun) -> None:
        with self.slots_lock:
            slot = self.slots.get(cancel.lease_id)
        if slot is None:
            return
        with slot.lock:
            if slot.cancel_requested:
                return
            slot.cancel_requested = True
            handle = slot.handle
        log.info("cancelling flow run %s (%s)", slot.run_name, slot.run_id)
        if handle is not None:
            threading.Thread(target=handle.stop, args=(self.settings.cancel_grace,), daemon=True).start()

    def _run_slot(self, slot: RunSlot) -> None:
        rc = None
        slot.watch = observe.RunWatch(slot.leased)
        logs.bind(flow_run_id=slot.run_id, flow_run_name=slot.run_name)
        try:
            leased = slot.leased
            try:
                runner = runners.runner_for(leased.flow_runner.type, _struct(leased.flow_runner.config))
            except Exception as e:  # noqa: BLE001 - an unusable runner fails the run
                self._report(slot, "FAILED", f"cannot use flow runner {leased.flow_runner.type!r}: {e}")
                return
            with slot.lock:
                go = not (slot.cancel_requested or self.draining)
                if go and isinstance(runner, runners.InProcessFlowRunner):
                    slot.started = True
            if go and not slot.started:
                try:
                    self._start(slot, runner)
                except runners.RunStartError as e:
                    self._report(slot, "FAILED", f"cannot start the flow run: {e}")
                    return
            if not slot.started:
                if slot.cancel_requested:
                    self._report(slot, "CANCELLED", "cancelled before it started")
                else:
                    self._release(slot)
                return
            self.runs_started += 1
            if slot.handle is None:
                run = runners.InProcessRun(self.client, leased, slot.token)
                try:
                    run.run()
                    rc = 0 if run.state is not None and run.state.type == "COMPLETED" else 1
                except Exception as e:  # noqa: BLE001
                    log.warning("in-process flow run %s failed to report: %s", slot.run_name, e)
                return
            log.info("started flow run %s (%s) in %s", slot.run_name, slot.run_id, slot.handle.where)
            rc = slot.handle.wait()
            self._finish(slot, rc)
        except Exception as e:  # noqa: BLE001 - one line, and the agent carries on
            log.warning("flow run %s: %s: %s", slot.run_name, type(e).__name__, e)
        finally:
            slot.watch.end(started=slot.started, cancelled=slot.cancel_requested, rc=rc)
            if slot.handle is not None:
                slot.handle.release()
            slot.done.set()
            with self.slots_lock:
                self.slots.pop(slot.lease_id, None)
            self.wake.set()

    def _start(self, slot: RunSlot, runner) -> None:
        """Start the flow outside the slot's lock (a container takes a moment);
        a cancel or shutdown that came meanwhile stops it at once."""
        with slot.watch.starting():
            handle = runners.start_run(runner, slot.leased, token=slot.token, api_url=self.address,
                                       agent_id=self.agent_id, agent_name=self.settings.name, lease_ttl=self.ttl,
                                       pool_size=self.settings.limit + 8, extra_env=slot.watch.flow_env())
        with slot.lock:
            slot.handle = handle
            slot.started = True
            late = slot.cancel_requested or slot.shutdown_stopped
        if late:
            threading.Thread(target=handle.stop, args=(self.settings.cancel_grace,), daemon=True).start()

    def _held(self) -> set[tuple[str, int]]:
        with self.slots_lock:
            return {(s.run_id, s.token) for s in self.slots.values()}

    def _release(self, slot: RunSlot) -> None:
        self._send(apb.LeaseRequest(release=apb.LeaseRelease(lease_id=slot.lease_id)))

    def _finish(self, slot: RunSlot, rc: int | None) -> None:
        try:
            run = self.client.get_flow_run(slot.run_id)
        except FlowdeckError as e:
            log.warning("flow run %s ended (exit %s) but its state could not be read: %s", slot.run_name, rc, e)
            return
        if run.state.is_terminal:
            if slot.cancel_requested and run.state.type != "CANCELLED":
                log.info("flow run %s ended %s before the cancel took effect", slot.run_name, run.state.type)
            else:
                log.info("flow run %s finished: %s", slot.run_name, run.state.type)
            return
        if run.lease is None or run.lease.lease_id != slot.lease_id:
            log.warning("flow run %s: the lease was lost (it is %s now); not reporting", slot.run_name, run.state.type)
            return
        if slot.cancel_requested:
            self._report(slot, "CANCELLED", "cancelled by request: the agent stopped the flow's process")
        elif slot.shutdown_stopped:
            self._report(slot, "CRASHED", f"the agent shut down before the flow finished "
                                          f"(shutdown grace {self.settings.shutdown_grace:g}s)")
        else:
            self._report(slot, "CRASHED", slot.handle.exit_message(rc))

    def _report(self, slot: RunSlot, state: str, message: str) -> None:
        try:
            self.client.set_flow_run_state(slot.run_id, state, message=message, fencing_token=slot.token)
            log.info("flow run %s: %s (%s)", slot.run_name, state, message)
        except FlowdeckError as e:
            log.warning("flow run %s: could not report %s: %s", slot.run_name, state, e.message)

    # -- lifecycle ----------------------------------------------------------------------------

    def request_stop(self, *_args) -> None:
        """Signal handler: the first stops leasing, the second hurries."""
        if self.signalled.is_set():
            self.hurry.set()
        self.signalled.set()

    def drain(self) -> None:
        """Stop leasing, release un-started runs, let running flows finish
        within the grace period, stop the rest."""
        log.info("stopping: no new runs; %d running get up to %gs to finish",
                 len(self.slots), self.settings.shutdown_grace)
        self.draining = True
        self._restart_stream()
        deadline = time.monotonic() + self.settings.shutdown_grace
        while time.monotonic() < deadline and not self.hurry.is_set():
            with self.slots_lock:
                if not self.slots:
                    break
            self.hurry.wait(0.1)
        with self.slots_lock:
            left = list(self.slots.values())
        for slot in left:
            with slot.lock:
                slot.shutdown_stopped = True
                handle = slot.handle
            if handle is not None:
                log.info("stopping flow run %s: the shutdown grace period is over", slot.run_name)
                threading.Thread(target=handle.stop, args=(min(self.settings.cancel_grace, 5.0),), daemon=True).start()
        for slot in left:
            slot.done.wait(30)

    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        conn = threading.Thread(target=self._connection_loop, name="lease-stream", daemon=True)
        hb = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        conn.start()
        hb.start()
        if self.settings.docker_sweep_seconds > 0:
            from flowdeck.agent.docker_sweep import OrphanSweep

            OrphanSweep(self.client, self.address, self._held, interval=self.settings.docker_sweep_seconds,
                        stop_grace=self.settings.cancel_grace).start(self.finished)
        log.info("agent %s starting: server %s, queues %s, limit %d", self.settings.name, self.address,
                 ", ".join(self.settings.work_queues), self.settings.limit)
        while not self.signalled.wait(0.5):
            pass
        self.drain()
        self.finished.set()
        self.wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        conn.join(5)
        self.channel.close()
        self.client.close()
        log.info("agent %s stopped", self.settings.name)
        return 0


def _struct(msg) -> dict:
    from flowdeck.core.structs import struct_dict

    return struct_dict(msg)


def main(settings: AgentSettings, log_level: str = "INFO", log_format: str = "text") -> int:
    logs.configure(log_level, log_format)
    telemetry.ensure_tracing("flowdeck-agent")  # before the first channel: spans name this service
    agent = Agent(settings)
    if settings.metrics_port is not None:
        port = observe.serve(settings.metrics_port, settings.metrics_host)
        log.info("agent metrics on http://%s:%d/metrics", settings.metrics_host, port)
    return agent.run()
