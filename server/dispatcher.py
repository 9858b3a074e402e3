"""The dispatcher: pushes due runs down connected agents' lease streams.

Push, not poll. One asyncio task per server wakes when
  * a run is created or changes state, a queue changes, an agent connects
    (app.events "runs"; across replicas on Postgres via LISTEN/NOTIFY),
  * the earliest SCHEDULED run becomes due (it sleeps until exactly then),
  * and, as a safety net for changes made by other processes without a
    notification, every `dispatcher_safety_tick_seconds`.

The database side of a lease (claim, release, extend, expire) is in
flowdeck.server.leasing. Each agent's stream gets plain-Python items in its
outbox (a `Lease`, a `CancelOrder`, an error, or None at the end); the agent
service turns them into messages.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from typing import NamedTuple

from flowdeck.core.errors import AbortedError, UnavailableError
from flowdeck.server import leasing, metrics, tracing, work_queues
from flowdeck.server.db import Database
from flowdeck.server.events import Events
from flowdeck.server.models import new_id, utcnow
from flowdeck.server.settings import Settings

log = logging.getLogger("flowdeck.server.dispatcher")


class CancelOrder(NamedTuple):
    """Tell an agent to stop a run it holds (its cancellation was asked)."""

    flow_run_id: str
    lease_id: str


# -- the connection registry ----------------------------------------------------

@dataclasses.dataclass(eq=False)
class Connection:
    agent_id: str
    agent_name: str
    queue_ids: list[str]
    capacity: int
    ttl: float
    # Leases and cancel orders to send; an exception ends the stream with its
    # status, None ends it normally.
    outbox: asyncio.Queue = dataclasses.field(default_factory=asyncio.Queue)
    # run id -> lease id of every run this agent holds (PENDING or RUNNING).
    held: dict[str, str] = dataclasses.field(default_factory=dict)
    # Lease ids issued on this connection (released when it closes, if un-started).
    leases: set[str] = dataclasses.field(default_factory=set)
    cancels_sent: set[str] = dataclasses.field(default_factory=set)
    closed: bool = False

    def free(self) -> int:
        return self.capacity - len(self.held)

    def send(self, item: leasing.Lease | CancelOrder) -> None:
        if not self.closed:
            self.outbox.put_nowait(item)

    def close(self, error: Exception | None = None) -> None:
        """End the stream: with `error` as its status, else normally."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(error)


# -- the dispatcher ------------------------------------------------------------------

class Dispatcher:
    def __init__(self, db: Database, settings: Settings, events: Events) -> None:
        self.db = db
        self.settings = settings
        self.events = events
        self.conns: dict[str, Connection] = {}  # agent id -> its live stream
        self._wake: asyncio.Event | None = None
        self._cancel_wake: asyncio.Event | None = None
        self._bg: set[asyncio.Task] = set()
        self.running = False

    # -- connections ---------------------------------------------------------------

    def ttl_for(self, requested: float) -> float:
        ttl = float(self.settings.lease_ttl_seconds)
        if requested > 0:
            ttl = min(ttl, max(0.5, requested))
        return ttl

    async def connect(self, *, agent_id: str, agent_name: str, queue_names: list[str], capacity: int,
                      requested_ttl: float) -> Connection:
        if not self.running:
            raise UnavailableError("this server is not dispatching runs (its background loops are off or not "
                                   "started yet); retry, or connect to a server started with `flowdeck server start`",
                                   reason="DISPATCHER_NOT_RUNNING")

        def work(s):
            qs = work_queues.by_names(s, queue_names, "hello.work_queues")
            return [q.id for q in qs]

        queue_ids = await self.db.run_read(work)
        agent_id = agent_id or new_id()
        ttl = self.ttl_for(requested_ttl)
        old = self.conns.get(agent_id)
        if old is not None:
            old.close(AbortedError(f"agent {agent_id} opened a newer lease stream", reason="LEASE_STREAM_REPLACED"))
        conn = Connection(agent_id=agent_id, agent_name=agent_name or f"agent-{agent_id[:8]}",
                          queue_ids=queue_ids, capacity=capacity, ttl=ttl)
        conn.held = await self.db.run_write(lambda s: leasing.agent_connected(s, agent_id, ttl))
        self.conns[agent_id] = conn
        log.info("agent %s (%s) connected: queues %s, capacity %d, holding %d",
                 conn.agent_name, agent_id, ",".join(queue_names), capacity, len(conn.held))
        self.poke()
        self.poke_cancels()
        return conn

    def disconnect(self, conn: Connection) -> None:
        conn.closed = True
        if self.conns.get(conn.agent_id) is conn:
            del self.conns[conn.agent_id]
        pending = [conn.held[r] for r in conn.held if conn.held[r] in conn.leases]
        log.info("agent %s (%s) disconnected", conn.agent_name, conn.agent_id)
        if pending:
            self._spawn(self._release_on_close(conn, pending))

    async def _release_on_close(self, conn: Connection, lease_ids: list[str]) -> None:
        try:
            n = await self.db.run_write(lambda s: leasing.release_leases(
                s, lease_ids, f"released: the lease stream of agent {conn.agent_name} closed"))
            if n:
                log.info("released %d un-started run(s) of agent %s", n, conn.agent_name)
                self.events.publish("runs")
        except Exception:  # noqa: BLE001 - the leases lapse by TTL instead
            log.warning("could not release the runs of agent %s; their leases will lapse",
                        conn.agent_name, exc_info=True)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def heartbeat(self, conn: Connection, run_ids: list[str]) -> None:
        fresh = [lid for rid, lid in conn.held.items() if lid in conn.leases]
        if not run_ids and not fresh:
            return
        await self.db.run_write(lambda s: leasing.extend_leases(s, conn.agent_id, run_ids, fresh, conn.ttl))

    async def release(self, conn: Connection, lease_id: str) -> None:
        run_id = await self.db.run_write(lambda s: leasing.release_one(s, conn.agent_id, lease_id))
        if run_id is not None:
            conn.held.pop(run_id, None)
            self.events.publish("runs")

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def poke_cancels(self) -> None:
        if self._cancel_wake is not None:
            self._cancel_wake.set()

    # -- loops -----------------------------------------------------------------------

    def start(self) -> list[asyncio.Task]:
        self.running = True
        self._wake = self.events.subscribe("runs")
        self._cancel_wake = self.events.subscribe("cancel")
        return [
            asyncio.ensure_future(self._dispatch_loop()),
            asyncio.ensure_future(self._expiry_loop()),
            asyncio.ensure_future(self._cancel_loop()),
        ]

    async def _sleep_on(self, ev: asyncio.Event, timeout: float) -> None:
        if timeout > 0:
            try:
                await asyncio.wait_for(ev.wait(), timeout)
            except TimeoutError:
                pass
        ev.clear()

    async def _dispatch_loop(self) -> None:
        tick = float(self.settings.dispatcher_safety_tick_seconds)
        try:
            while True:
                timeout = tick
                try:
                    next_due = await self.dispatch_pass()
                    if next_due is not None:
                        wait = (next_due - utcnow()).total_seconds() + 0.001
                        timeout = max(0.0, min(timeout, wait))
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - keep dispatching
                    log.warning("dispatch pass failed: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
                    timeout = min(tick, 1.0)
                await self._sleep_on(self._wake, timeout)
        finally:
            self._close_all()

    def _close_all(self) -> None:
        self.running = False
        for conn in list(self.conns.values()):
            conn.close(UnavailableError("the flowdeck server is shutting down; reconnect",
                                        reason="SERVER_SHUTTING_DOWN"))

    async def dispatch_pass(self) -> dt.datetime | None:
        """Lease due runs to agents with free capacity; return the next due time."""
        conns = [c for c in self.conns.values() if not c.closed]
        if not conns:
            return None
        held = {rid: lid for c in conns for rid, lid in c.held.items()}
        if held:
            alive = await self.db.run_read(lambda s: leasing.still_held(s, held))
            for c in conns:
                for rid in [r for r in c.held if r not in alive]:
                    lid = c.held.pop(rid)
                    c.leases.discard(lid)
        free = [c for c in conns if c.free() > 0 and not c.closed]
        now = utcnow()
        any_due, next_due = await self.db.run_read(lambda s: leasing.due_status(s, now))
        if not free or not any_due:
            return next_due
        random.shuffle(free)
        free.sort(key=lambda c: -c.free())
        dry: set[str] = set()
        for c in free:
            qids = [q for q in c.queue_ids if q not in dry]
            if not qids or c.closed:
                continue
            want = c.free()
            result = await self.db.run_write(lambda s: leasing.claim(
                s, queue_ids=qids, agent_id=c.agent_id, agent_name=c.agent_name, want=want, ttl=c.ttl, now=now,
                traced=tracing.on()))
            metrics.runs_leased(result.leased)
            dry |= result.dry
            for lease in tracing.traced_leases(result.leased):
                c.held[lease.run.id] = lease.lease_id
                c.leases.add(lease.lease_id)
                c.send(lease)
            if result.leased and c.closed:  # it went away while we leased: give them back at once
                self._spawn(self._release_on_close(c, [lease.lease_id for lease in result.leased]))
        return next_due

    async def _expiry_loop(self) -> None:
        ttl = float(self.settings.lease_ttl_seconds)
        cap = max(0.05, min(1.0, ttl / 4))
        # After a restart, agents get one TTL to reconnect and heartbeat before
        # their leases (which could not be extended while we were down) lapse.
        await asyncio.sleep(ttl)
        while True:
            timeout = cap
            try:
                # A read first: the write lock (SQLite) is taken only when
                # something has actually lapsed.
                nxt = await self.db.run_read(leasing.next_lease_expiry)
                if nxt is not None and nxt < utcnow():
                    done = await self.db.run_write(leasing.expire_leases)
                    metrics.leases_expired(done)
                    if done:
                        log.info("leases lapsed: %s", ", ".join(f"{r} -> {t}" for r, t in done))
                        self.events.publish("runs")
                    if len(done) >= leasing.EXPIRE_BATCH:
                        continue
                    # Nothing done: another replica holds those rows right now.
                    timeout = 0.02 if done else 0.2
                elif nxt is not None:
                    timeout = max(0.01, min(cap, (nxt - utcnow()).total_seconds() + 0.005))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.warning("lease expiry pass failed: %s", e)
            await asyncio.sleep(timeout)

    async def _cancel_loop(self) -> None:
        tick = float(self.settings.dispatcher_safety_tick_seconds)
        while True:
            try:
                await self.push_cancels()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.warning("cancel pass failed: %s", e)
            await self._sleep_on(self._cancel_wake, tick)

    async def push_cancels(self) -> int:
        agent_ids = {a for a, c in self.conns.items() if not c.closed}
        if not agent_ids:
            return 0
        rows = await self.db.run_read(lambda s: leasing.cancels_for(s, agent_ids))
        n = 0
        for agent_id, run_id, lease_id in rows:
            conn = self.conns.get(agent_id)
            if conn is None or lease_id in conn.cancels_sent:
                continue
            conn.cancels_sent.add(lease_id)
            conn.send(CancelOrder(flow_run_id=run_id, lease_id=lease_id))
            n += 1
        return n

