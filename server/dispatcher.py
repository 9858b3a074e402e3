"""The dispatcher: pushes due runs down connected agents' lease streams.

Push, not poll. One asyncio task per server wakes when
  * a run is created or changes state, a queue changes, an agent connects
    (app.events "runs"; across replicas on Postgres via LISTEN/NOTIFY),
  * the earliest SCHEDULED run becomes due (it sleeps until exactly then),
  * and, as a safety net for changes made by other processes without a
    notification, every `dispatcher_safety_tick_seconds`.

Leasing is one atomic conditional UPDATE: candidate ids are picked (with
`FOR UPDATE SKIP LOCKED` on Postgres, so racing replicas do not queue behind
each other; SQLite serializes writers), then
    UPDATE flow_runs SET state PENDING, lease..., fencing_token = fencing_token + 1
    WHERE id IN (candidates) AND state_type = 'SCHEDULED' RETURNING ...
so a run has at most one holder. Queue concurrency limits are enforced under a
row lock on the queue (Postgres) or the write lock (SQLite).

Leases expire: a PENDING run whose lease lapses goes back to SCHEDULED, a
RUNNING one becomes CRASHED, a run whose cancellation was asked becomes
CANCELLED. A closed stream's un-started (PENDING) runs are released at once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import random
import time
import uuid

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from flowdeck.server import work_queues
from flowdeck.core import states
from flowdeck.server.api import convert
from flowdeck.server.flow_runs import StateInput, apply_state
from flowdeck.server.models import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    FlowRunStateRow,
    WorkQueueRow,
    new_id,
    utcnow,
)
from flowdeck.v1 import agent_service_pb2 as apb

log = logging.getLogger("flowdeck.server.dispatcher")

ACTIVE = (states.PENDING, states.RUNNING)
CHUNK = 500  # ids per IN (...) list


def _chunks(items: list, n: int = CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


# -- the connection registry ----------------------------------------------------

@dataclasses.dataclass(eq=False)
class Connection:
    agent_id: str
    agent_name: str
    queue_ids: list[str]
    queue_names: list[str]
    capacity: int
    ttl: float
    outbox: asyncio.Queue = dataclasses.field(default_factory=asyncio.Queue)
    # run id -> lease id of every run this agent holds (PENDING or RUNNING).
    held: dict[str, str] = dataclasses.field(default_factory=dict)
    # Lease ids issued on this connection (released when it closes, if un-started).
    leases: set[str] = dataclasses.field(default_factory=set)
    acked: set[str] = dataclasses.field(default_factory=set)
    cancels_sent: set[str] = dataclasses.field(default_factory=set)
    closed: bool = False
    connected_at: float = dataclasses.field(default_factory=time.monotonic)

    def free(self) -> int:
        return self.capacity - len(self.held)

    def send(self, item) -> None:
        if not self.closed:
            self.outbox.put_nowait(item)

    def close(self, error: Exception | None = None) -> None:
        """End the stream: with `error` as its status, else normally."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(error)


# -- database work (runs on the pool threads) -------------------------------------

@dataclasses.dataclass
class ClaimResult:
    leased: list[tuple[str, str, apb.LeasedRun]]  # (run id, lease id, message)
    dry: set[str]  # queues with nothing more to give in this pass


def _storage_for(s: Session, dep: DeploymentRow) -> tuple[str, dict] | None:
    """Storage block type and config (secrets in clear) when flow_data needs one.
    The storage issue provides flowdeck.server.storage_blocks.lease_config."""
    if dep.flow_data_encoding != "blockstorage":
        return None
    try:
        block_id = json.loads(dep.flow_data_blob or "{}").get("block_id")
    except (ValueError, AttributeError):
        return None
    if not block_id:
        return None
    try:
        from flowdeck.server import storage_blocks  # type: ignore[attr-defined]

        lease_config = storage_blocks.lease_config
    except (ImportError, AttributeError):
        return None
    try:
        return lease_config(s, block_id)
    except Exception:  # noqa: BLE001 - the agent reports what it cannot load
        log.warning("could not read storage block %s for a lease", block_id, exc_info=True)
        return None


def leased_messages(s: Session, leased: list[tuple[str, str, int]], expires: dt.datetime,
                    now: dt.datetime) -> list[tuple[str, str, apb.LeasedRun]]:
    """Build LeasedRun messages for (run id, lease id, token) just leased."""
    ids = [r[0] for r in leased]
    runs: dict[str, FlowRunRow] = {}
    for chunk in _chunks(ids):
        for row, fname in s.execute(
            select(FlowRunRow, FlowRow.name).join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
            .where(FlowRunRow.id.in_(chunk))
        ).all():
            row.flow_name = fname
            runs[row.id] = row
    dep_ids = list({r.deployment_id for r in runs.values() if r.deployment_id})
    deps: dict[str, DeploymentRow] = {}
    for chunk in _chunks(dep_ids):
        for dep, fname in s.execute(
            select(DeploymentRow, FlowRow.name).join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
            .where(DeploymentRow.id.in_(chunk))
        ).all():
            dep.flow_name = fname
            deps[dep.id] = dep
    storage_cache: dict[str, tuple | None] = {}
    out = []
    for run_id, lease_id, _token in leased:
        row = runs[run_id]
        dep = deps.get(row.deployment_id or "")
        msg = apb.LeasedRun(flow_run=convert.flow_run_out(row), server_time=convert.ts(now))
        msg.lease.CopyFrom(msg.flow_run.lease)
        if dep is not None:
            msg.deployment.CopyFrom(convert.deployment_out(dep))
            msg.flow_data.CopyFrom(msg.deployment.flow_data)
            if dep.id not in storage_cache:
                storage_cache[dep.id] = _storage_for(s, dep)
            storage = storage_cache[dep.id]
            if storage:
                msg.storage_type = storage[0] or ""
                msg.storage_config.CopyFrom(convert.dict_to_struct(storage[1] or {}))
        runner_type = row.flow_runner_type or (dep.flow_runner_type if dep else "") or "universal"
        runner_config = row.flow_runner_config if row.flow_runner_type else (dep.flow_runner_config if dep else {})
        msg.flow_runner.type = runner_type
        msg.flow_runner.config.CopyFrom(convert.dict_to_struct(runner_config or {}))
        out.append((run_id, lease_id, msg))
    return out


def claim(s: Session, *, queue_ids: list[str], agent_id: str, agent_name: str, want: int,
          ttl: float, now: dt.datetime | None = None) -> ClaimResult:
    """Lease up to `want` due runs from the queues, in order, to one agent."""
    now = now or utcnow()
    pg = s.bind.dialect.name == "postgresql"
    expires = now + dt.timedelta(seconds=ttl)
    got: list[tuple[str, str, int]] = []
    dry: set[str] = set()
    for qid in queue_ids:
        if want <= 0:
            break
        q = s.get(WorkQueueRow, qid)
        if q is None or q.is_paused:
            dry.add(qid)
            continue
        n = want
        if q.concurrency_limit is not None:
            if pg:
                # Claims on a limited queue are serialized by this row lock, so
                # the count below cannot be raced past the limit.
                s.execute(select(WorkQueueRow.id).where(WorkQueueRow.id == qid).with_for_update())
            room = q.concurrency_limit - work_queues.active_count(s, qid)
            if room <= 0:
                dry.add(qid)
                continue
            n = min(n, room)
        cand = (
            select(FlowRunRow.id)
            .where(
                FlowRunRow.state_type == states.SCHEDULED,
                FlowRunRow.expected_start_time <= now,
                work_queues.matches(q, s.bind.dialect.name),
            )
            .order_by(FlowRunRow.expected_start_time, FlowRunRow.id)
            .limit(n)
        )
        if pg:
            cand = cand.with_for_update(skip_locked=True, of=FlowRunRow)
        ids = list(s.scalars(cand))
        if len(ids) < n or n < want:
            dry.add(qid)
        if not ids:
            continue
        lease_ids = {rid: new_id() for rid in ids}
        stmt = (
            update(FlowRunRow)
            .where(FlowRunRow.id.in_(ids), FlowRunRow.state_type == states.SCHEDULED)
            .values(
                state_type=states.PENDING,
                state_name="Pending",
                state_message=f"leased by agent {agent_name}",
                state_timestamp=now,
                updated=now,
                lease_id=case(lease_ids, value=FlowRunRow.id),
                agent_id=agent_id,
                agent_name=agent_name,
                fencing_token=FlowRunRow.fencing_token + 1,
                lease_expires=expires,
                work_queue_id=qid,
                cancel_requested=False,
            )
            .returning(FlowRunRow.id, FlowRunRow.lease_id, FlowRunRow.fencing_token)
            .execution_options(synchronize_session=False)
        )
        rows = s.execute(stmt).all()
        if rows:
            s.execute(insert(FlowRunStateRow), [
                dict(flow_run_id=r[0], type=states.PENDING, name="Pending",
                     message=f"leased by agent {agent_name}", timestamp=now) for r in rows
            ])
        got.extend((r[0], r[1], r[2]) for r in rows)
        want -= len(rows)
    return ClaimResult(leased_messages(s, got, expires, now) if got else [], dry)


def _release_rows(s: Session, rows: list[FlowRunRow], why: str, now: dt.datetime) -> int:
    n = 0
    for row in rows:
        if row.state_type != states.PENDING:
            continue
        if row.cancel_requested:
            apply_state(s, row, StateInput(states.CANCELLED, "Cancelled", "cancelled before it started"), now)
        else:
            apply_state(s, row, StateInput(states.SCHEDULED, "Scheduled", why), now)
        n += 1
    return n


def _locked(s: Session, stmt):
    if s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(s.scalars(stmt))


def release_leases(s: Session, lease_ids: list[str], why: str, now: dt.datetime | None = None) -> int:
    """Give PENDING runs held under these leases back to their queues."""
    now = now or utcnow()
    n = 0
    for chunk in _chunks(lease_ids):
        rows = _locked(s, select(FlowRunRow).where(
            FlowRunRow.lease_id.in_(chunk), FlowRunRow.state_type == states.PENDING))
        n += _release_rows(s, rows, why, now)
    return n


def release_one(s: Session, agent_id: str, lease_id: str, now: dt.datetime | None = None) -> str | None:
    """An agent gives back a leased run it has not started; returns the run id
    (None when it holds no such un-started lease: releasing twice is harmless)."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.lease_id == lease_id, FlowRunRow.agent_id == agent_id,
        FlowRunRow.state_type == states.PENDING))
    if not rows:
        return None
    _release_rows(s, rows, "released by its agent before it started", now)
    return rows[0].id


def agent_connected(s: Session, agent_id: str, ttl: float, now: dt.datetime | None = None) -> dict[str, str]:
    """An agent (re)connects: its un-started runs from earlier streams are
    released; the runs it is running stay its own (leases extended). Returns
    run id -> lease id of what it still holds."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.agent_id == agent_id, FlowRunRow.state_type.in_(ACTIVE),
        FlowRunRow.lease_id.is_not(None)))
    _release_rows(s, [r for r in rows if r.state_type == states.PENDING],
                  "released: its agent reconnected without it", now)
    running = {r.id: r.lease_id for r in rows if r.state_type == states.RUNNING}
    if running:
        s.execute(update(FlowRunRow).where(FlowRunRow.id.in_(list(running)))
                  .values(lease_expires=now + dt.timedelta(seconds=ttl))
                  .execution_options(synchronize_session=False))
    return running


def extend_leases(s: Session, agent_id: str, run_ids: list[str], lease_ids: list[str], ttl: float,
                  now: dt.datetime | None = None) -> int:
    """A heartbeat: extend this agent's leases on the runs it names and on the
    leases issued on its current stream."""
    now = now or utcnow()
    conds = []
    if run_ids:
        conds.append(FlowRunRow.id.in_(run_ids[:5000]))
    if lease_ids:
        conds.append(FlowRunRow.lease_id.in_(lease_ids[:5000]))
    if not conds:
        return 0
    result = s.execute(
        update(FlowRunRow)
        .where(FlowRunRow.agent_id == agent_id, FlowRunRow.state_type.in_(ACTIVE),
               FlowRunRow.lease_id.is_not(None), or_(*conds))
        .values(lease_expires=now + dt.timedelta(seconds=ttl))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def expire_leases(s: Session, now: dt.datetime | None = None, limit: int = 500) -> list[tuple[str, str]]:
    """Act on lapsed leases; returns (run id, new state type) for each."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.lease_id.is_not(None),
        FlowRunRow.lease_expires < now).limit(limit))
    out = []
    for row in rows:
        who = f"agent {row.agent_name or '?'} ({row.agent_id})"
        if row.cancel_requested:
            st = StateInput(states.CANCELLED, "Cancelled",
                            f"cancelled: {who} stopped heartbeating before confirming the cancellation")
        elif row.state_type == states.PENDING:
            st = StateInput(states.SCHEDULED, "Scheduled",
                            f"the lease of {who} expired before the run started; back to the queue")
        else:
            st = StateInput(states.CRASHED, "Crashed",
                            f"{who} stopped heartbeating: its lease expired at "
                            f"{row.lease_expires.isoformat(timespec='seconds')} while the run was RUNNING")
        apply_state(s, row, st, now)
        out.append((row.id, st.type))
    return out


def next_lease_expiry(s: Session) -> dt.datetime | None:
    return s.scalar(select(func.min(FlowRunRow.lease_expires)).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.lease_id.is_not(None)))


def due_status(s: Session, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """(is any deployment run due now, when the next one becomes due)."""
    base = select(FlowRunRow.id).where(
        FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.deployment_id.is_not(None))
    any_due = s.scalar(base.where(FlowRunRow.expected_start_time <= now).limit(1)) is not None
    next_due = s.scalar(select(func.min(FlowRunRow.expected_start_time)).where(
        FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.deployment_id.is_not(None),
        FlowRunRow.expected_start_time > now))
    return any_due, next_due


def still_held(s: Session, held: dict[str, str]) -> set[str]:
    """Which of these (run id -> lease id) are still PENDING/RUNNING under that lease."""
    alive = set()
    ids = list(held)
    for chunk in _chunks(ids):
        for rid, lid in s.execute(select(FlowRunRow.id, FlowRunRow.lease_id).where(
                FlowRunRow.id.in_(chunk), FlowRunRow.state_type.in_(ACTIVE))).all():
            if lid is not None and held.get(rid) == lid:
                alive.add(rid)
    return alive


def cancels_for(s: Session, agent_ids: set[str]) -> list[tuple[str, str, str]]:
    """(agent id, run id, lease id) of held runs whose cancellation was asked,
    for these agents."""
    rows = s.execute(select(FlowRunRow.agent_id, FlowRunRow.id, FlowRunRow.lease_id).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.cancel_requested.is_(True),
        FlowRunRow.lease_id.is_not(None))).all()
    return [tuple(r) for r in rows if r[0] in agent_ids]


# -- the dispatcher ------------------------------------------------------------------

class Dispatcher:
    def __init__(self, app) -> None:
        self.app = app
        self.db = app.db
        self.settings = app.settings
        self.conns: dict[str, Connection] = {}  # agent id -> its live stream
        self._wake: asyncio.Event | None = None
        self._cancel_wake: asyncio.Event | None = None
        self._bg: set[asyncio.Task] = set()
        self.running = False
        self.started_at = time.monotonic()
        self.stats = {"passes": 0, "leased": 0, "expired": 0}

    # -- connections ---------------------------------------------------------------

    def ttl_for(self, requested: float) -> float:
        ttl = float(self.settings.lease_ttl_seconds)
        if requested > 0:
            ttl = min(ttl, max(0.5, requested))
        return ttl

    async def connect(self, *, agent_id: str, agent_name: str, queue_names: list[str], capacity: int,
                      requested_ttl: float) -> Connection:
        if not self.running:
            from flowdeck.core.errors import UnavailableError

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
            from flowdeck.core.errors import AbortedError

            old.close(AbortedError(f"agent {agent_id} opened a newer lease stream", reason="LEASE_STREAM_REPLACED"))
        conn = Connection(agent_id=agent_id, agent_name=agent_name or f"agent-{agent_id[:8]}",
                          queue_ids=queue_ids, queue_names=list(queue_names), capacity=capacity, ttl=ttl)
        conn.held = await self.db.run_write(lambda s: agent_connected(s, agent_id, ttl))
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
            n = await self.db.run_write(lambda s: release_leases(
                s, lease_ids, f"released: the lease stream of agent {conn.agent_name} closed"))
            if n:
                log.info("released %d un-started run(s) of agent %s", n, conn.agent_name)
                self.app.events.publish("runs")
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
        await self.db.run_write(lambda s: extend_leases(s, conn.agent_id, run_ids, fresh, conn.ttl))

    def ack(self, conn: Connection, lease_ids) -> None:
        conn.acked.update(lease_ids)

    async def release(self, conn: Connection, lease_id: str) -> None:
        run_id = await self.db.run_write(lambda s: release_one(s, conn.agent_id, lease_id))
        if run_id is not None:
            conn.held.pop(run_id, None)
            self.app.events.publish("runs")

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def poke_cancels(self) -> None:
        if self._cancel_wake is not None:
            self._cancel_wake.set()

    # -- loops -----------------------------------------------------------------------

    def start(self) -> list[asyncio.Task]:
        self.running = True
        self.started_at = time.monotonic()
        self._wake = self.app.events.subscribe("runs")
        self._cancel_wake = self.app.events.subscribe("cancel")
        return [
            asyncio.ensure_future(self._dispatch_loop()),
            asyncio.ensure_future(self._expiry_loop()),
            asyncio.ensure_future(self._cancel_loop()),
        ]

    async def _sleep_on(self, ev: asyncio.Event, timeout: float) -> None:
        if timeout > 0:
            try:
                await asyncio.wait_for(ev.wait(), timeout)
            except (TimeoutError, asyncio.TimeoutError):
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
        from flowdeck.core.errors import UnavailableError

        self.running = False
        for conn in list(self.conns.values()):
            conn.close(UnavailableError("the flowdeck server is shutting down; reconnect",
                                        reason="SERVER_SHUTTING_DOWN"))

    async def dispatch_pass(self) -> dt.datetime | None:
        """Lease due runs to agents with free capacity; return the next due time."""
        self.stats["passes"] += 1
        conns = [c for c in self.conns.values() if not c.closed]
        if not conns:
            return None
        held = {rid: lid for c in conns for rid, lid in c.held.items()}
        if held:
            alive = await self.db.run_read(lambda s: still_held(s, held))
            for c in conns:
                for rid in [r for r in c.held if r not in alive]:
                    lid = c.held.pop(rid)
                    c.leases.discard(lid)
                    c.acked.discard(lid)
        free = [c for c in conns if c.free() > 0 and not c.closed]
        now = utcnow()
        any_due, next_due = await self.db.run_read(lambda s: due_status(s, now))
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
            result = await self.db.run_write(lambda s: claim(
                s, queue_ids=qids, agent_id=c.agent_id, agent_name=c.agent_name, want=want, ttl=c.ttl, now=now))
            dry |= result.dry
            for run_id, lease_id, msg in result.leased:
                c.held[run_id] = lease_id
                c.leases.add(lease_id)
                c.send(apb.LeaseResponse(leased_run=msg))
            if result.leased:
                self.stats["leased"] += len(result.leased)
                if c.closed:  # it went away while we leased: give them back at once
                    self._spawn(self._release_on_close(c, [lid for _, lid, _ in result.leased]))
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
                nxt = await self.db.run_read(next_lease_expiry)
                if nxt is not None and nxt < utcnow():
                    done = await self.db.run_write(expire_leases)
                    if done:
                        self.stats["expired"] += len(done)
                        log.info("leases lapsed: %s", ", ".join(f"{r} -> {t}" for r, t in done))
                        self.app.events.publish("runs")
                    if len(done) >= 500:
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
        rows = await self.db.run_read(lambda s: cancels_for(s, agent_ids))
        n = 0
        for agent_id, run_id, lease_id in rows:
            conn = self.conns.get(agent_id)
            if conn is None or lease_id in conn.cancels_sent:
                continue
            conn.cancels_sent.add(lease_id)
            conn.send(apb.LeaseResponse(cancel_run=apb.CancelRun(flow_run_id=run_id, lease_id=lease_id)))
            n += 1
        return n


def get(app) -> Dispatcher:
    """The app's one dispatcher (made on first use)."""
    d = getattr(app, "dispatcher", None)
    if d is None:
        d = Dispatcher(app)
        app.dispatcher = d
    return d


def new_agent_id() -> str:
    return str(uuid.uuid4())
